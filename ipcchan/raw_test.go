package ipcchan_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
)

// SendRaw's bytes are the value's encoding: a Receiver decodes them as it
// decodes a Send's, after the hello SendRaw sent first; RecvRaw hands a
// Send's encoding over undecoded.
func TestSendRawRecvRaw(t *testing.T) {
	tx, rx := memPair[int64](8)
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	err := tx.SendRaw(ctx, 3, 8, func(room []byte) (int, error) {
		binary.NativeEndian.PutUint64(room, 42)
		return 8, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, tag, err := rx.RecvTag(ctx); err != nil || v != 42 || tag != 3 {
		t.Fatalf("RecvTag = %d, %d, %v; want 42, 3", v, tag, err)
	}
	if err := tx.Send(ctx, 7); err != nil {
		t.Fatal(err)
	}
	err = rx.RecvRaw(ctx, func(tag uint32, msg []byte) error {
		if len(msg) != 8 || binary.NativeEndian.Uint64(msg) != 7 {
			t.Errorf("RecvRaw got % x, want 7's encoding", msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Refusals: a message over the limit before fill runs, a count outside the
// room, a failing fill; none sends anything.
func TestSendRawRefusals(t *testing.T) {
	tx, rx := memPair[[]byte](8, ipcchan.WithMaxMessageSize(64))
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	ran := false
	err := tx.SendRaw(ctx, 0, 65, func([]byte) (int, error) { ran = true; return 0, nil })
	if !errors.Is(err, ipcchan.ErrMessageTooLarge) || ran {
		t.Fatalf("SendRaw over the limit = %v (fill ran: %v), want ErrMessageTooLarge before fill", err, ran)
	}
	for _, m := range []int{-1, 9} {
		if err := tx.SendRaw(ctx, 0, 8, func([]byte) (int, error) { return m, nil }); err == nil {
			t.Fatalf("fill returning %d of 8 was accepted", m)
		}
	}
	boom := errors.New("boom")
	if err := tx.SendRaw(ctx, 0, 8, func([]byte) (int, error) { return 8, boom }); !errors.Is(err, boom) {
		t.Fatalf("a failing fill: %v", err)
	}
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("a refused SendRaw sent something: %v", err)
	}
}

// A value Chan read ahead is handed to the next RecvRaw first, encoded
// again: RecvRaw keeps the order.
func TestRecvRawAfterChanReadAhead(t *testing.T) {
	tx, rx := memPair[int64](8)
	defer rx.Close()
	ctx := context.Background()
	for i := range int64(3) {
		if err := tx.Send(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	tx.Close()
	cctx, cancel := context.WithCancel(ctx)
	ch := ipcchan.Chan(cctx, rx)
	if v := <-ch; v != 0 {
		t.Fatalf("first value %d", v)
	}
	// Let the pump read value 1 ahead; the test holds either way.
	time.Sleep(10 * time.Millisecond)
	cancel()
	for v := range ch {
		t.Fatalf("value %d after cancel", v)
	}
	for want := uint64(1); want <= 2; want++ {
		err := rx.RecvRaw(ctx, func(_ uint32, msg []byte) error {
			if got := binary.NativeEndian.Uint64(msg); got != want {
				t.Errorf("RecvRaw got %d, want %d", got, want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := rx.RecvRaw(ctx, func(uint32, []byte) error { return nil }); err != io.EOF {
		t.Fatalf("RecvRaw after the last value = %v, want io.EOF", err)
	}
}
