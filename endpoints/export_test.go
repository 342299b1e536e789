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

// SetMoveWait sets how long a broadcast slot handed to a child waits to be
// taken over, and returns the function that restores it.
func SetMoveWait(d time.Duration) func() {
	old := moveWait.Swap(int64(d))
	return func() { moveWait.Store(old) }
}
