package ipcchantest

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
)

// Chan called inside a loop, the shape a program ported from
// `case v := <-ch:` has: every value arrives, in order, once, and the loop
// leaves no goroutine behind. (Each call once started a goroutine of its
// own, which read a value and then waited for ever to deliver it: half the
// values were lost.)
func testChanInLoop(t *testing.T, h *Harness) {
	const n = 1000
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", map[string]string{envCount: itoa(n)}, false, map[string]Passable{"out": tx})
	ctx := testCtx(t)
	before := runtime.NumGoroutine()
	tr := newTracker()
	timeout := time.NewTimer(suiteTimeout)
	defer timeout.Stop()
loop:
	for {
		select {
		case v, ok := <-ipcchan.Chan(ctx, rx):
			if !ok {
				break loop
			}
			if err := tr.add(v); err != nil {
				t.Fatal(err)
			}
			if g := runtime.NumGoroutine(); g > before+2 {
				t.Fatalf("%d goroutines after %d values, %d before the loop: Chan starts one per call", g, tr.n, before)
			}
		case <-timeout.C:
			t.Fatalf("stalled after %d of %d values", tr.n, n)
		}
	}
	if err := rx.Err(); err != nil {
		t.Fatalf("Err() = %v after the channel closed, want nil (end of stream)", err)
	}
	if tr.n != n {
		t.Fatalf("received %d values, want %d", tr.n, n)
	}
	p.wait()
}

// Chan with a fresh, short-lived context per iteration, mixed with Recv and
// TryRecv on the same Receiver: the values still arrive in order, once,
// whichever way each is taken. A value the feeding goroutine holds when a
// Recv comes is handed to that Recv rather than kept back.
func testChanMixed(t *testing.T, h *Harness) {
	const n = 600
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", map[string]string{envCount: itoa(n)}, false, map[string]Passable{"out": tx})
	ctx := testCtx(t)
	tr := newTracker()
	add := func(v []byte) {
		t.Helper()
		if err := tr.add(v); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; tr.n < n; i++ {
		switch i % 3 {
		case 0: // a select with its own deadline, cancelled after it
			ictx, cancel := context.WithTimeout(ctx, suiteTimeout)
			select {
			case v, ok := <-ipcchan.Chan(ictx, rx):
				if !ok {
					cancel()
					t.Fatalf("channel closed after %d values: %v", tr.n, rx.Err())
				}
				add(v)
			case <-ctx.Done():
				cancel()
				t.Fatalf("stalled after %d values", tr.n)
			}
			cancel()
		case 1: // the feeding goroutine of an earlier call may hold a value
			ipcchan.Chan(ctx, rx)
			v, err := rx.Recv(ctx)
			if err != nil {
				t.Fatalf("Recv after %d values: %v", tr.n, err)
			}
			add(v)
		case 2:
			if v, err := rx.TryRecv(); err == nil {
				add(v)
			}
		}
	}
	p.wait()
}
