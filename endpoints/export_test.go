package endpoints

import "time"

// SetWaitHook makes f be called with the object's description each time an
// open waiting for it (ipcchan.WithWaitForCreate) is about to sleep, and
// returns the function that removes it.
func SetWaitHook(f func(desc string)) func() {
	waitHook.Store(&f)
	return func() { waitHook.Store(nil) }
}

// WriterParks returns the count of rounds parked ring writers have made
// (each time one announced itself on wwait and went to sleep, or woke).
func WriterParks() uint64 { return writerParks.Load() }

// EventWaiting returns how many goroutines of this process wait on e
// (parked, having looked at the event once).
func EventWaiting(e *Event) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waiting
}

// SetEventRecheck sets how long a parked event waiter sleeps before it
// looks again (100 ms), before any event is used: a test child sets it to
// hours, so that a lost wake-up shows as a timeout rather than a delay.
// It returns the function that restores the default.
func SetEventRecheck(d time.Duration) func() {
	eventRecheck.Store(int64(d))
	return func() { eventRecheck.Store(int64(100 * time.Millisecond)) }
}

// SetMoveWait sets how long a broadcast slot handed to a child waits to be
// taken over, and returns the function that restores it.
func SetMoveWait(d time.Duration) func() {
	old := moveWait.Swap(int64(d))
	return func() { moveWait.Store(old) }
}
