package ctxlock

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Many goroutines increment a counter under the lock: none is lost (the
// race detector checks the exclusion too).
func TestMutexExcludes(t *testing.T) {
	var l Mutex
	n := 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 2000 {
				if err := l.Lock(context.Background(), nil); err != nil {
					t.Error(err)
					return
				}
				n++
				l.Unlock()
			}
		})
	}
	wg.Wait()
	if n != 16*2000 {
		t.Fatalf("n = %d, want %d", n, 16*2000)
	}
}

// A waiter gives up when its context ends or done closes, and a waiter that
// gave up does not keep the others from the lock.
func TestMutexAbandon(t *testing.T) {
	var l Mutex
	if err := l.Lock(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := l.Lock(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with an ended context = %v", err)
	}
	done := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- l.Lock(context.Background(), done) }()
	close(done)
	if err := <-errc; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Lock after done = %v", err)
	}
	if l.TryLock() {
		t.Fatal("TryLock took a held lock")
	}
	got := make(chan error, 1)
	go func() { got <- l.Lock(context.Background(), nil) }()
	l.Unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a waiter never got the released lock")
	}
	l.Unlock()
}
