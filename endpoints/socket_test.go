package endpoints_test

import (
	"context"
	"os"
	"path/filepath"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// socketPair connects a fresh listener's client to its server and returns
// the client's sending half and the server's receiving half; the other
// halves are closed.
func socketPair(network, address string, opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
	ctx := context.Background()
	l, err := endpoints.Listen[[]byte, []byte](ctx, network, address, opts...)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	client, err := endpoints.Dial[[]byte, []byte](ctx, network, l.Addr(), opts...)
	if err != nil {
		return nil, nil, err
	}
	server, err := l.Accept(ctx)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	client.Receiver().Close()
	server.Sender().Close()
	return client.Sender(), server.Receiver(), nil
}

var unixHarness = &ipcchantest.Harness{
	Name: "unix",
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		dir, err := os.MkdirTemp("", "ipcchan-sock-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(dir)
		return socketPair("unix", filepath.Join(dir, "s"), opts...)
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	// One write of a frame up to PIPE_BUF goes into one socket buffer, so
	// several writer processes keep their frames whole.
	MaxShared:  4096 - 8,
	SharedOpts: []ipcchan.Option{ipcchan.WithAtomicWrites(true)},
}

var tcpHarness = &ipcchantest.Harness{
	Name: "tcp",
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return socketPair("tcp", "127.0.0.1:0", opts...)
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	Skip: map[string]string{
		"ConcurrentProcesses": "TCP may split a non-blocking write at any byte when its send buffer is short, " +
			"so frames from several processes on one connection could interleave; give each process its own connection",
	},
}
