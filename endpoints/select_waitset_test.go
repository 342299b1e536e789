package endpoints_test

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// A Select's first case's end keeps the epoll set the Select waited on,
// for its next Select. The set must forget the other cases' descriptors
// (their ends may close and their numbers be reused by new descriptors),
// keep watching the end's own, and be closed with the end: the next
// Select over a new pipe that took the closed pipe's descriptor numbers
// still wakes when the new pipe gets a value, a Select waiting when the
// end closes returns that case with os.ErrClosed, and no descriptor is
// left once the ends are closed.
func TestSelectKeptWaitSet(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ringTx, ringRx, err := endpoints.RingPair[int](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer ringTx.Close()
	defer ringRx.Close()

	// waitFor selects on the ring and rx while a goroutine sends on tx
	// once the Select had time to park; the pipe's case must win.
	waitFor := func(round int, tx *ipcchan.Sender[int], rx *ipcchan.Receiver[int]) {
		t.Helper()
		go func() {
			time.Sleep(5 * time.Millisecond) // not a synchronisation: either order must work
			tx.Send(ctx, round)
		}()
		var got int
		i, err := ipcchan.Select(ctx,
			ipcchan.OnRecv(ringRx, func(int) { t.Errorf("round %d: the ring's case ran", round) }),
			ipcchan.OnRecv(rx, func(v int) { got = v }))
		if i != 1 || err != nil || got != round {
			t.Fatalf("round %d: Select = %d, %v, value %d; want 1, nil, %d", round, i, err, got, round)
		}
	}
	for round := range 5 {
		tx, rx, err := endpoints.PipePair[int]()
		if err != nil {
			t.Fatal(err)
		}
		waitFor(round, tx, rx)
		// Free the pipe's numbers for the next round's pipe.
		tx.Close()
		rx.Close()
	}

	// The ring's own descriptor stays watched between Selects.
	go func() {
		time.Sleep(5 * time.Millisecond)
		ringTx.Send(ctx, 42)
	}()
	var got int
	if i, err := ipcchan.Select(ctx, ipcchan.OnRecv(ringRx, func(v int) { got = v })); i != 0 || err != nil || got != 42 {
		t.Fatalf("Select on the ring = %d, %v, value %d; want 0, nil, 42", i, err, got)
	}

	// Closing the end under a waiting Select.
	done := make(chan error, 1)
	go func() {
		_, err := ipcchan.Select(ctx, ipcchan.OnRecv(ringRx, func(int) {}))
		done <- err
	}()
	time.Sleep(5 * time.Millisecond) // let the Select park; it must end either way
	ringRx.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Select on a closed ring = %v; want os.ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("Select did not end when its ring closed")
	}
}

// Many goroutines Select at once with the same end first, so that they
// race for the one wait set it keeps (one takes it, the others make sets
// of their own and close them, or give theirs to the end when it keeps
// none): every value sent on the ring and the pipe is received exactly
// once, and no descriptor is left once the ends are closed.
func TestSelectKeptWaitSetConcurrent(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ringTx, ringRx, err := endpoints.RingPair[int](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer ringRx.Close()
	pipeTx, pipeRx, err := endpoints.PipePair[int]()
	if err != nil {
		t.Fatal(err)
	}
	defer pipeRx.Close()
	const goroutines, perEnd = 16, 500
	got := make(chan int, 2*perEnd)
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			rxs := [2]*ipcchan.Receiver[int]{ringRx, pipeRx}
			for rxs[0] != nil || rxs[1] != nil {
				k, err := ipcchan.Select(ctx,
					ipcchan.OnRecv(rxs[0], func(v int) { got <- v }),
					ipcchan.OnRecv(rxs[1], func(v int) { got <- v }))
				switch {
				case errors.Is(err, io.EOF):
					rxs[k] = nil // that end is done, as a nil channel in a select
				case err != nil:
					t.Error(err)
					return
				}
			}
		})
	}
	for i, tx := range []*ipcchan.Sender[int]{ringTx, pipeTx} {
		wg.Go(func() {
			defer tx.Close()
			for v := range perEnd {
				if err := tx.Send(ctx, i*perEnd+v); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(got)
	seen := make(map[int]int)
	for v := range got {
		seen[v]++
	}
	for v := range 2 * perEnd {
		if seen[v] != 1 {
			t.Fatalf("value %d received %d times; want once (%d distinct values received)", v, seen[v], len(seen))
		}
	}
}
