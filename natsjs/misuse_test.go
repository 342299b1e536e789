package natsjs_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/natsjs"
)

func TestMisuse(t *testing.T) {
	c := connect(t, "")
	ctx := testCtx(t)
	wq := natsjs.ChannelConfig{}
	t.Run("BadNames", func(t *testing.T) {
		for _, name := range []string{"", "a.b", "a b", "a*", "a>", "ü", string(make([]byte, 65))} {
			if _, err := natsjs.NewSender[int](ctx, c, name, wq); !errors.Is(err, os.ErrInvalid) {
				t.Errorf("NewSender(%q) = %v, want os.ErrInvalid", name, err)
			}
			if _, err := natsjs.NewReceiver[int](ctx, c, name, wq, natsjs.ReceiverConfig{}); !errors.Is(err, os.ErrInvalid) {
				t.Errorf("NewReceiver(%q) = %v, want os.ErrInvalid", name, err)
			}
		}
		if _, err := natsjs.NewReceiver[int](ctx, c, "ok", wq, natsjs.ReceiverConfig{Name: "a.b"}); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("consumer name a.b: %v", err)
		}
		if err := c.DeleteChannel(ctx, "a.b"); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("DeleteChannel(a.b) = %v", err)
		}
	})
	t.Run("RefusedOptions", func(t *testing.T) {
		for _, o := range []ipcchan.Option{ipcchan.WithSenders(2), ipcchan.WithPerm(0o600), ipcchan.WithHandshake(true), ipcchan.WithLossy()} {
			if _, err := natsjs.NewSender[int](ctx, c, "opts", wq, o); !errors.Is(err, ipcchan.ErrOption) {
				t.Errorf("NewSender with %s = %v, want ErrOption", o.Name(), err)
			}
		}
		for _, o := range []ipcchan.Option{ipcchan.WithTag(3), ipcchan.WithLinger(time.Second), ipcchan.WithReplay()} {
			if _, err := natsjs.NewReceiver[int](ctx, c, "opts", wq, natsjs.ReceiverConfig{}, o); !errors.Is(err, ipcchan.ErrOption) {
				t.Errorf("NewReceiver with %s = %v, want ErrOption", o.Name(), err)
			}
		}
		if _, err := natsjs.NewReceiver[int](ctx, c, "opts", wq, natsjs.ReceiverConfig{MaxPending: -1}); !errors.Is(err, ipcchan.ErrOption) {
			t.Errorf("MaxPending -1: %v", err)
		}
		if _, err := natsjs.NewSender[int](ctx, c, "opts", natsjs.ChannelConfig{Mode: 7}); !errors.Is(err, ipcchan.ErrOption) {
			t.Errorf("Mode 7: %v", err)
		}
	})
	t.Run("Mismatch", func(t *testing.T) {
		tx, err := natsjs.NewSender[int](ctx, c, "typed", wq)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		for what, open := range map[string]func() error{
			"type": func() error {
				_, err := natsjs.NewReceiver[string](ctx, c, "typed", wq, natsjs.ReceiverConfig{})
				return err
			},
			"codec": func() error {
				_, err := natsjs.NewSender[int](ctx, c, "typed", wq, ipcchan.WithCodec(codec.JSON[int]()))
				return err
			},
			"mode": func() error {
				_, err := natsjs.NewReceiver[int](ctx, c, "typed", natsjs.ChannelConfig{Mode: natsjs.Broadcast}, natsjs.ReceiverConfig{})
				return err
			},
		} {
			err := open()
			var oe *ipcchan.OpError
			if !errors.Is(err, ipcchan.ErrHandshake) || !errors.As(err, &oe) {
				t.Errorf("%s mismatch: %v, want an *OpError wrapping ErrHandshake", what, err)
			}
		}
	})
	t.Run("CloseTwiceSendAfterClose", func(t *testing.T) {
		tx, err := natsjs.NewSender[int](ctx, c, "closing", wq)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := natsjs.NewReceiver[int](ctx, c, "closing", wq, natsjs.ReceiverConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tx.Close(); err != nil {
			t.Fatalf("second Close = %v", err)
		}
		if err := tx.Send(ctx, 1); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Send after Close = %v, want os.ErrClosed", err)
		}
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("Recv = %v, want io.EOF", err)
		}
		rx.Close()
		if err := rx.Close(); err != nil {
			t.Fatalf("second receiver Close = %v", err)
		}
		if _, err := rx.Recv(ctx); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Recv after Close = %v, want os.ErrClosed", err)
		}
		if err := c.DeleteChannel(ctx, "closing"); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteChannel(ctx, "closing"); err != nil {
			t.Fatalf("deleting a missing channel = %v, want nil", err)
		}
	})
	t.Run("NilConn", func(t *testing.T) {
		if _, err := natsjs.NewSender[int](ctx, nil, "x", wq); err == nil {
			t.Fatal("NewSender with a nil Conn succeeded")
		}
	})
}

// Back-pressure: a channel bounded at 10 values with no receiver. Send
// #11 waits (a deadline ends it, having stored nothing), and goes through
// once a receiver takes one; nothing is lost.
func TestBackPressure(t *testing.T) {
	c := connect(t, "")
	ctx := testCtx(t)
	cfg := natsjs.ChannelConfig{MaxMsgs: 10}
	tx, err := natsjs.NewSender[int](ctx, c, "bounded", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := tx.Send(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	err = tx.Send(dctx, -1)
	cancel()
	if err != context.DeadlineExceeded {
		t.Fatalf("Send #11 on a full channel = %v, want context.DeadlineExceeded", err)
	}
	if err := tx.TrySend(-1); err != ipcchan.ErrWouldBlock {
		t.Fatalf("TrySend on a full channel = %v, want ErrWouldBlock", err)
	}
	sent := make(chan error, 1)
	go func() { sent <- tx.Send(ctx, 10) }()
	rx, err := natsjs.NewReceiver[int](ctx, c, "bounded", cfg, natsjs.ReceiverConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if v, err := rx.Recv(ctx); err != nil || v != 0 {
		t.Fatalf("Recv = %d, %v", v, err)
	}
	if err := <-sent; err != nil {
		t.Fatalf("Send #11 after a value was taken = %v", err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	for want := 1; ; want++ {
		v, err := rx.Recv(ctx)
		if err == io.EOF {
			if want != 11 {
				t.Fatalf("the end after %d values, want 11", want)
			}
			break
		}
		if err != nil || v != want {
			t.Fatalf("Recv = %d, %v; want %d", v, err, want)
		}
	}
}

// The README's shapes, exactly: a loop around ipcchan.Chan, range All,
// a Select over a shared-memory ring and a JetStream receiver together,
// and a cancelled Recv that takes nothing.
func TestUsageShapes(t *testing.T) {
	c := connect(t, "")
	ctx := testCtx(t)
	cfg := natsjs.ChannelConfig{}
	send := func(name string, vs ...string) {
		t.Helper()
		tx, err := natsjs.NewSender[string](ctx, c, name, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if err := tx.Send(ctx, v); err != nil {
				t.Fatal(err)
			}
		}
		if err := tx.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("ChanLoop", func(t *testing.T) {
		rx, err := natsjs.NewReceiver[string](ctx, c, "chanloop", cfg, natsjs.ReceiverConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		send("chanloop", "a", "b", "c")
		var got []string
	loop:
		for {
			select {
			case v, ok := <-ipcchan.Chan(ctx, rx):
				if !ok {
					break loop
				}
				got = append(got, v)
			case <-ctx.Done():
				t.Fatal(ctx.Err())
			}
		}
		if err := rx.Err(); err != nil || len(got) != 3 || got[2] != "c" {
			t.Fatalf("got %q, Err %v", got, err)
		}
	})
	t.Run("RangeAll", func(t *testing.T) {
		rx, err := natsjs.NewReceiver[string](ctx, c, "rangeall", cfg, natsjs.ReceiverConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		send("rangeall", "x", "y")
		var got []string
		for v, err := range rx.All(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if len(got) != 2 || got[0] != "x" || got[1] != "y" {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("SelectRingAndJetStream", func(t *testing.T) {
		ringTx, ringRx, err := endpoints.RingPair[string](4096)
		if err != nil {
			t.Fatal(err)
		}
		defer ringRx.Close()
		jsRx, err := natsjs.NewReceiver[string](ctx, c, "selected", cfg, natsjs.ReceiverConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer jsRx.Close()
		if err := ringTx.Send(ctx, "from the ring"); err != nil {
			t.Fatal(err)
		}
		ringTx.Close()
		send("selected", "from jetstream")
		got := map[string]bool{}
		for ends := 0; ends < 2; {
			i, err := ipcchan.Select(ctx,
				ipcchan.OnRecv(ringRx, func(v string) { got[v] = true }),
				ipcchan.OnRecv(jsRx, func(v string) { got[v] = true }))
			switch {
			case err == io.EOF:
				ends++
				if i == 0 {
					ringRx = nil
				} else {
					jsRx = nil
				}
			case err != nil:
				t.Fatal(err)
			}
		}
		if !got["from the ring"] || !got["from jetstream"] {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("Cancel", func(t *testing.T) {
		rx, err := natsjs.NewReceiver[string](ctx, c, "cancel", cfg, natsjs.ReceiverConfig{})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		_, err = rx.Recv(dctx)
		cancel()
		if err != context.DeadlineExceeded {
			t.Fatalf("Recv past its deadline = %v", err)
		}
		send("cancel", "after")
		if v, err := rx.Recv(ctx); err != nil || v != "after" {
			t.Fatalf("Recv = %q, %v", v, err)
		}
	})
}
