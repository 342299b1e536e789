package endpoints

import (
	"sync"
	"sync/atomic"
)

// callGuard lets an endpoint's Close stop new calls and wait for those in
// progress before it releases what they use (a mapping to unmap, a queue to
// post an end-of-stream marker to after the last Send). A call brackets its
// work with enter and leave; Close calls close, makes the calls in
// progress return (waking any that wait), then calls wait.
//
// enter and leave cost one atomic add each: the count of calls in progress
// shares a word with the bit that close sets, so enter sees both at once.
// The zero callGuard is ready to use.
type callGuard struct {
	state     atomic.Int64 // calls in progress, plus guardShut once closed
	drained   chan struct{}
	makeOnce  sync.Once // makes drained
	closeOnce sync.Once // closes drained: no call in progress after close
}

// guardShut is the bit of callGuard.state that close sets.
const guardShut = 1 << 62

// enter marks a call in progress; it returns false once close was called,
// and the call must then do nothing.
func (g *callGuard) enter() bool {
	if g.state.Add(1)&guardShut != 0 {
		g.leave()
		return false
	}
	return true
}

// leave ends a call that enter let in; the last to leave after close lets
// wait return.
func (g *callGuard) leave() {
	if g.state.Add(-1) == guardShut {
		g.drain()
	}
}

// drain lets wait return.
func (g *callGuard) drain() { g.closeOnce.Do(func() { close(g.drainedChan()) }) }

// drainedChan returns the channel closed once close was called and no call
// is in progress.
func (g *callGuard) drainedChan() chan struct{} {
	g.makeOnce.Do(func() { g.drained = make(chan struct{}) })
	return g.drained
}

// close refuses new calls from now on. It returns false if it was already
// called.
func (g *callGuard) close() bool {
	for {
		old := g.state.Load()
		if old&guardShut != 0 {
			return false
		}
		if g.state.CompareAndSwap(old, old|guardShut) {
			if old == 0 {
				g.drain()
			}
			return true
		}
	}
}

// closed reports whether close was called.
func (g *callGuard) closed() bool { return g.state.Load()&guardShut != 0 }

// wait returns once every call let in has left. It must follow close; new
// calls stay refused for good.
func (g *callGuard) wait() { <-g.drainedChan() }
