package natsjs_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/natsjs"
)

// connect starts (or joins) the embedded server of a fresh store dir.
func connect(t testing.TB, dir string) *natsjs.Conn {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := natsjs.Connect(ctx, natsjs.WithStoreDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSendRecvEOF(t *testing.T) {
	for _, mode := range []natsjs.Mode{natsjs.WorkQueue, natsjs.Broadcast} {
		t.Run(mode.String(), func(t *testing.T) {
			c := connect(t, "")
			ctx := testCtx(t)
			cfg := natsjs.ChannelConfig{Mode: mode}
			rx, err := natsjs.NewReceiver[int](ctx, c, "basic", cfg, natsjs.ReceiverConfig{Name: "sub"})
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			tx, err := natsjs.NewSender[int](ctx, c, "basic", cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				if err := tx.Send(ctx, i); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Close(); err != nil {
				t.Fatal(err)
			}
			for i := range 10 {
				v, err := rx.Recv(ctx)
				if err != nil || v != i {
					t.Fatalf("Recv #%d = %d, %v", i, v, err)
				}
			}
			if _, err := rx.Recv(ctx); !errors.Is(err, io.EOF) {
				t.Fatalf("Recv after the end = %v, want io.EOF", err)
			}
			_ = ipcchan.ErrHandshake
		})
	}
}
