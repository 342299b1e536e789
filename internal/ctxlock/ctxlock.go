// Package ctxlock provides a mutex whose Lock gives up when a context ends
// or an endpoint closes: the serialization every ipcchan endpoint uses for
// calls that may wait (a Send, a Recv, a read or write on a descriptor).
package ctxlock

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
)

// Mutex is a mutual exclusion lock whose Lock can be abandoned. Uncontended
// it costs what a sync.Mutex costs (a compare-and-swap to lock, an atomic
// add to unlock, and one atomic load); a contended Lock waits on a channel
// that Unlock signals. The zero value is an unlocked Mutex. A Mutex must not
// be copied after first use.
type Mutex struct {
	mu      sync.Mutex
	waiters atomic.Int32
	once    sync.Once
	wake    chan struct{} // a token for one waiter to retry; made on first contention
}

func (l *Mutex) wakeChan() chan struct{} {
	l.once.Do(func() { l.wake = make(chan struct{}, 1) })
	return l.wake
}

// Lock acquires l. It returns ctx.Err() if ctx ends first, and
// os.ErrClosed if done is closed first (done may be nil: never).
func (l *Mutex) Lock(ctx context.Context, done <-chan struct{}) error {
	if l.mu.TryLock() {
		return nil // small enough to be inlined: the slow path is apart
	}
	return l.lockSlow(ctx, done)
}

// lockSlow is Lock when l is held: it waits for Unlock's token.
func (l *Mutex) lockSlow(ctx context.Context, done <-chan struct{}) error {
	wake := l.wakeChan()
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	for {
		// A waiter counted before this attempt is sure to get a token
		// from any Unlock after it.
		if l.mu.TryLock() {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-done:
			return os.ErrClosed
		}
	}
}

// TryLock acquires l if it is free, without waiting, and reports whether
// it did.
func (l *Mutex) TryLock() bool { return l.mu.TryLock() }

// Unlock releases l. It is a run-time error if l is not locked.
func (l *Mutex) Unlock() {
	l.mu.Unlock()
	if l.waiters.Load() > 0 {
		select {
		case l.wakeChan() <- struct{}{}:
		default: // a token is already waiting to be taken
		}
	}
}
