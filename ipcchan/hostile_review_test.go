package ipcchan_test

// Attacks on the "nothing lost, nothing crashes" fixes of the typed layer.

import (
	"context"
	"testing"

	"github.com/ipcchan/go/ipcchan"
)

// Claim 10 (misuse is an error, never a crash): a nil transport is refused
// by the constructors, with an error.
func TestReviewNilTransport(t *testing.T) {
	for name, f := range map[string]func() error{
		"NewSender(nil)":   func() error { _, err := ipcchan.NewSender[int](nil); return err },
		"NewReceiver(nil)": func() error { _, err := ipcchan.NewReceiver[int](nil); return err },
	} {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s panicked: %v", name, p)
				}
			}()
			if err := f(); err == nil {
				t.Errorf("%s = nil error, want one saying what to pass", name)
			}
		}()
	}
}

// Claim 2 (Chan): Err says why the channel of the last Chan call closed —
// nil at the end of the stream. The shape of testChanMixed's first case: a
// Chan with a short-lived context, cancelled once its value is in, then a
// Chan with another context that runs to the end of the stream. The first
// call's goroutine, stopping on its cancelled context, recorded
// context.Canceled after the second had recorded the end, so a loop
// returning rx.Err() at the closed channel returned context.Canceled for a
// clean end (about 1 run in 60 under the race detector).
func TestReviewChanErrIsTheLastChannels(t *testing.T) {
	const runs = 2000
	ctx := context.Background()
	for i := range runs {
		tx, rx := memPair[int](4)
		if err := tx.Send(ctx, 1); err != nil {
			t.Fatal(err)
		}
		first, cancel := context.WithCancel(ctx)
		c1 := ipcchan.Chan(first, rx)
		if v, ok := <-c1; !ok || v != 1 {
			t.Fatalf("run %d: first value %d, %v (%v)", i, v, ok, rx.Err())
		}
		tx.Close()
		cancel()
		c2 := ipcchan.Chan(ctx, rx)
		for v := range c2 {
			t.Fatalf("run %d: value %d after the only one", i, v)
		}
		for range c1 { // the first goroutine has stopped: it recorded its error
		}
		if err := rx.Err(); err != nil {
			rx.Close()
			t.Fatalf("run %d: Err() = %v after the last channel closed at the end of the stream, want nil", i, err)
		}
		rx.Close()
	}
}
