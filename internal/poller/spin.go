package poller

import "time"

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
	s.budget = max(s.budget/2, minSpin)
}
