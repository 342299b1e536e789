package ipcchan

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
)

// ctxLock is a mutex whose lock gives up when a context ends or the
// endpoint closes. Uncontended, it costs a sync.Mutex's compare-and-swap;
// a contended lock waits on a channel that unlock signals. The zero value
// is not usable; see newCtxLock.
type ctxLock struct {
	*ctxLockState
}

type ctxLockState struct {
	mu      sync.Mutex
	waiters atomic.Int32
	wake    chan struct{} // a token for one waiter to retry
}

func newCtxLock() ctxLock { return ctxLock{&ctxLockState{wake: make(chan struct{}, 1)}} }

// lock acquires l, or returns ctx.Err() or os.ErrClosed if ctx ends or
// closed is closed first.
func (l ctxLock) lock(ctx context.Context, closed <-chan struct{}) error {
	if l.mu.TryLock() {
		return nil
	}
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	for {
		// A waiter counted before this attempt is sure to get a token
		// from any unlock after it.
		if l.mu.TryLock() {
			return nil
		}
		select {
		case <-l.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return os.ErrClosed
		}
	}
}

// tryLock acquires l if it is free.
func (l ctxLock) tryLock() bool { return l.mu.TryLock() }

func (l ctxLock) unlock() {
	l.mu.Unlock()
	if l.waiters.Load() > 0 {
		select {
		case l.wake <- struct{}{}:
		default: // a token is already waiting to be taken
		}
	}
}
