package endpoints

import (
	"sync"
	"sync/atomic"
)

// callGuard lets an endpoint's Close stop new calls and wait for those in
// progress before it releases what they use (a mapping to unmap, a queue to
// post an end-of-stream marker to after the last Send). A call brackets its
// work with enter and leave; Close calls shut, makes the calls in progress
// return (waking any that wait), then calls wait.
//
// enter and leave cost an atomic add each: a read lock of a RWMutex whose
// write lock Close takes for good.
type callGuard struct {
	mu   sync.RWMutex
	shut atomic.Bool
}

// enter marks a call in progress; it returns false once shut was called,
// and the call must then do nothing.
func (g *callGuard) enter() bool {
	if !g.mu.TryRLock() { // fails only while wait waits, or after it
		return false
	}
	if g.shut.Load() {
		g.mu.RUnlock()
		return false
	}
	return true
}

// leave ends a call that enter let in.
func (g *callGuard) leave() { g.mu.RUnlock() }

// close refuses new calls from now on. It returns false if it was already
// called.
func (g *callGuard) close() bool { return !g.shut.Swap(true) }

// closed reports whether close was called.
func (g *callGuard) closed() bool { return g.shut.Load() }

// wait returns once every call let in has left. It must follow close; new
// calls stay refused for good.
func (g *callGuard) wait() { g.mu.Lock() }
