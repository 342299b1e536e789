package natsjs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/natsjs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// leaderlessStream stands in for a JetStream cluster whose stream has just
// lost its leader, on a plain NATS server (no JetStream): nothing takes a
// publish to the channel (no responders), and the first request on the
// stream's info subject gets no answer at all — what nats-server's members
// do while the stream has no leader (only the leader answers). That
// request "elects" the new leader: from then on the stand-in answers the
// stream's info with info (recording meta, if given) and every publish on
// the channel's subjects with an acknowledgement.
type leaderlessStream struct {
	srv     *server.Server
	fake    *nats.Conn
	mu      sync.Mutex
	elected bool
}

func newLeaderlessStream(t *testing.T, channel string, meta map[string]string) *leaderlessStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		t.Fatal("the server did not start within 10 s")
	}
	l := &leaderlessStream{srv: srv}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if l.fake, err = nats.Connect(srv.ClientURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.fake.Close)
	stream := "IPCCHAN_" + channel
	ack := func(m *nats.Msg) { m.Respond(fmt.Appendf(nil, `{"stream":%q,"seq":1}`, stream)) }
	_, err = l.fake.Subscribe("$JS.API.STREAM.INFO."+stream, func(m *nats.Msg) {
		l.mu.Lock()
		first := !l.elected
		l.elected = true
		l.mu.Unlock()
		if first {
			// Silent, as a member of a leaderless group; the new
			// leader takes the channel's publishes from now on.
			if _, err := l.fake.Subscribe("ipcchan."+channel+".>", ack); err != nil {
				t.Error(err)
			}
			return
		}
		info, _ := json.Marshal(map[string]any{
			"type":    "io.nats.jetstream.api.v1.stream_info_response",
			"config":  map[string]any{"name": stream, "subjects": []string{"ipcchan." + channel + ".>"}, "metadata": meta},
			"created": time.Now().UTC(),
			"state":   map[string]any{},
		})
		m.Respond(info)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.fake.Flush(); err != nil {
		t.Fatal(err)
	}
	return l
}

// connect returns a Conn to the stand-in's server.
func (l *leaderlessStream) connect(t *testing.T, ctx context.Context) *natsjs.Conn {
	t.Helper()
	c, err := natsjs.Connect(ctx, natsjs.WithURL(l.srv.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestPublishThroughUnansweredRequest: a pool's publish (a job of Do, a
// result of a worker) that finds nobody taking it asks whether the stream
// still exists; when that question is never answered (the stream has no
// leader yet) the publish goes on retrying and is stored once a leader
// takes it. It waited for its context's whole deadline (TestPoolCluster's
// Do calls hung after the kill).
func TestPublishThroughUnansweredRequest(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := poolCtx(t, time.Minute)
	l := newLeaderlessStream(t, "p-jobs", nil)
	c := l.connect(t, ctx)
	m := &nats.Msg{Subject: "ipcchan.p-jobs.v", Data: []byte("job"), Header: nats.Header{}}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := natsjs.PublishRetry(pctx, c, "p-jobs", m, "pool.1"); err != nil {
		t.Fatalf("a publish through a stream's leader change: %v (the unanswered info request held it)", err)
	}
}

// TestOpenThroughUnansweredRequest: opening a channel while its stream has
// no leader (its info request is never answered) asks again and opens it
// once a leader answers, instead of waiting for ctx's whole deadline. Every
// JetStream request of the channel layer goes through the same bounded,
// retried attempt.
func TestOpenThroughUnansweredRequest(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := poolCtx(t, time.Minute)
	cd, err := codec.Default[int]()
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[int]()
	l := newLeaderlessStream(t, "opened", map[string]string{
		"ipcchan.codec": cd.Name(), "ipcchan.type": ipcchan.TypeDescription(typ),
		"ipcchan.fingerprint": fmt.Sprintf("%016x", ipcchan.Fingerprint(typ)), "ipcchan.mode": "workqueue",
	})
	c := l.connect(t, ctx)
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tx, err := natsjs.NewSender[int](octx, c, "opened", natsjs.ChannelConfig{})
	if err != nil {
		t.Fatalf("opening a channel through its stream's leader change: %v (the unanswered info request held it)", err)
	}
	if err := tx.Send(ctx, 7); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
}
