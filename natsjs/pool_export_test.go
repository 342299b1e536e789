package natsjs

import (
	"context"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SetAfterResultHook sets a function a worker calls after a job's result is
// stored and before the job is acknowledged (the window the pool's
// exactly-once answer rests on).
func SetAfterResultHook(f func(id string)) { afterResultHook = f }

// ConnectStandIn is a stand-in for Connect until the channel layer lands:
// it runs the node of o (if o is not nil) and connects to it, or to url.
func ConnectStandIn(ctx context.Context, o *server.Options, url string, nopts ...nats.Option) (*Conn, func(), error) {
	var srv *server.Server
	if o != nil {
		o = o.Clone()
		o.JetStream = true
		var err error
		if srv, err = server.NewServer(o); err != nil {
			return nil, nil, err
		}
		if !o.NoLog {
			srv.ConfigureLogger()
		}
		srv.Start()
		if !srv.ReadyForConnections(10 * time.Second) {
			srv.Shutdown()
			return nil, nil, context.DeadlineExceeded
		}
		url = srv.ClientURL()
	}
	nc, err := nats.Connect(url, append([]nats.Option{nats.ReconnectBufSize(-1), nats.MaxReconnects(-1)}, nopts...)...)
	if err != nil {
		if srv != nil {
			srv.Shutdown()
		}
		return nil, nil, err
	}
	js, _ := jetstream.New(nc)
	c := &Conn{nc: nc, js: js, srv: srv}
	return c, func() {
		nc.Close()
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
	}, nil
}
