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

	// onMemory says the tries read shared memory, where system calls
	// would be slower than the clock: a try costs a few nanoseconds.
	onMemory bool
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
//
// How it spins matters as much as how long. With other Ps to run this
// process's other goroutines, it spins in place and calls runtime.Gosched
// only every spinYieldEvery tries: a Gosched puts the goroutine on the
// global run queue and wakes an idle P to look for work, that is a second
// thread of this process competing for a core with the peer it waits for
// (a Gosched per try, as this loop once made, cost a round trip on a ring
// a sixth of its median), while a rare one lets a goroutine that became
// runnable on this P run here rather than wake a thread of its own. With
// GOMAXPROCS 1 it must yield after a few tries (the peer may be a
// goroutine of this process). On shared memory (s.onMemory) a try costs a
// few nanoseconds and reading the clock several tries: it puts a processor
// hint between tries, and reads the clock every memoryClockEvery tries,
// the first time only then — a peer that answers within those tries (a
// ring's round trip) is caught without reading it at all, and the budget
// counts from that first reading, a few microseconds late at most. Tries
// that are system calls read it every syscallClockEvery tries.
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
	yield := runtime.GOMAXPROCS(0) == 1
	clockEvery := syscallClockEvery
	if s.onMemory {
		clockEvery = memoryClockEvery
	}
	var start time.Time // the first reading of the clock
	for i := 1; ; i++ {
		switch {
		case yield && i > spinBeforeYield, i%spinYieldEvery == 0:
			runtime.Gosched()
		case s.onMemory:
			cpuRelax()
		}
		if err = try(arg); err != unix.EAGAIN {
			var waited time.Duration
			if !start.IsZero() {
				waited = time.Since(start)
			}
			s.hit(waited)
			return err
		}
		if i%clockEvery != 0 {
			continue
		}
		if start.IsZero() {
			start = time.Now()
		} else if time.Since(start) > budget {
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

const (
	// spinBeforeYield is how many tries a spin with GOMAXPROCS 1 makes
	// back to back before it yields between tries.
	spinBeforeYield = 32
	// spinYieldEvery is how often a spin yields with other Ps, in tries.
	spinYieldEvery = 256
	// memoryClockEvery and syscallClockEvery are how often a spin reads
	// the clock, in tries, when they read shared memory and when they
	// make system calls.
	memoryClockEvery  = 32
	syscallClockEvery = 4
)
