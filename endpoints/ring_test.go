package endpoints_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/ipcchan/ipcchan/endpoints"
	"github.com/ipcchan/ipcchan/ipcchan"
	"github.com/ipcchan/ipcchan/ipcchan/ipcchantest"
)

var ringHarness = &ipcchantest.Harness{
	Name: "ring",
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return endpoints.RingPair[[]byte](256+1<<20, opts...)
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   1<<19 - 8,
	MaxShared:    1<<19 - 8,
	WatchPeer:    true, // no kernel end of stream on shared memory
}

func TestRingConformance(t *testing.T) { ipcchantest.Run(t, ringHarness) }

// Records wrap around the end of the data area many times, with sizes that
// make pads, and arrive whole and in order.
func TestRingWrapAround(t *testing.T) {
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[[]byte](256 + 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	go func() {
		msg := make([]byte, 0, 300)
		for i := range 5000 {
			msg = msg[:i%300]
			for j := range msg {
				msg[j] = byte(i + j)
			}
			if err := tx.Send(ctx, msg); err != nil {
				t.Error(err)
				return
			}
		}
		tx.Close()
	}()
	var buf []byte
	for i := 0; ; i++ {
		err := rx.RecvInto(ctx, &buf)
		if err == io.EOF {
			if i != 5000 {
				t.Fatalf("end of stream after %d records", i)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) != i%300 {
			t.Fatalf("record %d: %d bytes, want %d", i, len(buf), i%300)
		}
		for j, b := range buf {
			if b != byte(i+j) {
				t.Fatalf("record %d byte %d: %d", i, j, b)
			}
		}
	}
}

// Zero-copy: reserve and commit in the ring, peek and release in place.
func TestRingZeroCopy(t *testing.T) {
	tx, rx, err := endpoints.RingPair[[]byte](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	w := tx.Transport().(*endpoints.Ring)
	r := rx.Transport().(*endpoints.Ring)
	space, err := w.Reserve(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := copy(space, "written in place")
	if err := w.Commit(7, n); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reserve(ctx, 1<<20); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Fatalf("an oversized reservation: %v", err)
	}
	p, tag, err := r.Peek(ctx)
	if err != nil || string(p) != "written in place" || tag != 7 {
		t.Fatalf("Peek = %q, %d, %v", p, tag, err)
	}
	if _, _, err := r.Peek(ctx); err == nil {
		t.Fatal("a second Peek before Release succeeded")
	}
	r.Release()
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("after Release: %v", err)
	}
}
