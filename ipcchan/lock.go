package ipcchan

import (
	"context"
	"os"
)

// ctxLock is a mutex whose Lock gives up when a context ends or the
// endpoint closes. The zero value is not usable; see newCtxLock.
type ctxLock chan struct{}

func newCtxLock() ctxLock { return make(ctxLock, 1) }

// lock acquires l, or returns ctx.Err() or os.ErrClosed if ctx ends or
// closed is closed first.
func (l ctxLock) lock(ctx context.Context, closed <-chan struct{}) error {
	select {
	case l <- struct{}{}:
		return nil
	default:
	}
	select {
	case l <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-closed:
		return os.ErrClosed
	}
}

// tryLock acquires l if it is free.
func (l ctxLock) tryLock() bool {
	select {
	case l <- struct{}{}:
		return true
	default:
		return false
	}
}

func (l ctxLock) unlock() { <-l }
