package endpoints

// SetWaitHook makes f be called with the object's description each time an
// open waiting for it (ipcchan.WithWaitForCreate) is about to sleep, and
// returns the function that removes it.
func SetWaitHook(f func(desc string)) func() {
	waitHook.Store(&f)
	return func() { waitHook.Store(nil) }
}

// RingWriterWaits returns how many times ring writers have gone round their
// wait for room (or for the lock) in this process.
func RingWriterWaits() uint64 { return ringWriterWaits.Load() }
