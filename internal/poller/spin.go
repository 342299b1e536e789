package poller

import (
	"context"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// Spinning: a goroutine parked on the runtime poller takes tens of
// microseconds to wake on a virtual machine (epoll, then a futex to start a
// thread), while a peer that answers at once does so in a few. So a Read that
// finds nothing retries for a short while before it parks. How long adapts,
// as an adaptive mutex does: the budget doubles (up to max) whenever
// spinning caught data and halves whenever it ran out, so an endpoint that
// is mostly idle soon spins for almost nothing.
const (
	initialSpin    = 20 * time.Microsecond
	defaultMaxSpin = 50 * time.Microsecond
	minSpin        = 2 * time.Microsecond
)

// spinner holds the adaptive spin budget of one direction of an FD. It is
// used by one goroutine at a time, like the rest of the waiter.
type spinner struct {
	budget time.Duration
	max    time.Duration // zero means defaultMaxSpin
	min    time.Duration // zero means minSpin
}

func (s *spinner) limit() time.Duration {
	if s.max > 0 {
		return s.max
	}
	return defaultMaxSpin
}

// hit records that spinning caught data after waited.
func (s *spinner) hit(waited time.Duration) {
	s.budget = min(max(2*s.budget, 2*waited), s.limit())
}

// miss records that spinning ran out.
func (s *spinner) miss() {
	floor := minSpin
	if s.min > 0 {
		floor = s.min
	}
	s.budget = max(s.budget/2, floor)
}

// spinFor retries try(arg) without parking for as long as s allows, and
// adapts s to the outcome. It returns unix.EAGAIN if try never got
// through (or ctx ended), else try's result. A first attempt that succeeds
// at once says nothing about spinning and leaves s as it was. try is
// passed with its argument, rather than as a closure, so that callers
// allocate nothing.
func spinFor[A any](ctx context.Context, s *spinner, try func(A) error, arg A) error {
	if s == nil || s.budget <= 0 {
		return unix.EAGAIN
	}
	err := try(arg)
	if err != unix.EAGAIN {
		return err
	}
	budget := s.budget
	done := ctx.Done()
	start := time.Now()
	for i := 1; ; i++ {
		// The first retries come back to back: a peer that answers at
		// once (a shared-memory ring) is seen a scheduler pass sooner.
		if i > 32 {
			runtime.Gosched()
		}
		if err = try(arg); err != unix.EAGAIN {
			s.hit(time.Since(start))
			return err
		}
		if i%8 != 0 {
			continue // reading the clock costs as much as a try
		}
		if time.Since(start) > budget {
			s.miss()
			return unix.EAGAIN
		}
		if done != nil {
			select {
			case <-done:
				return unix.EAGAIN // the caller reports the cancellation
			default:
			}
		}
	}
}
