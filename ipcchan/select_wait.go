package ipcchan

import (
	"sync"
	"sync/atomic"

	"github.com/ipcchan/go/internal/poller"
)

// selectWaiters lets a Select wait on an end whose state is not all in its
// transport's descriptor. Another goroutine's receive may leave whole
// frames in a stream's buffer, or take a queue's last end-of-stream marker,
// and the descriptor then says nothing; values handed back by a Chan
// goroutine, a send lock let go and Close are not in it either. So every
// Select waiting on the end registers an event of its own, and the end sets
// each one after any such change; the epoch lets a Select see a change that
// came between its attempt and its registration.
//
// An end pays for this only while a Select watches it: changed is one
// atomic load otherwise. A Select counts itself in watchers before it first
// reads the epoch, so a change whose changed saw no watcher came before
// that read, and the Select's attempt sees it.
type selectWaiters struct {
	watchers atomic.Int32  // Selects between their first attempt and their return
	epoch    atomic.Uint64 // changes seen by a watcher so far
	mu       sync.Mutex
	evs      []*poller.Event
}

// changed records a change and wakes the waiting Selects. The end calls it
// after the change is visible: after a receive or send has let go of its
// lock, after a value is handed back, at Close.
func (w *selectWaiters) changed() {
	if w.watchers.Load() == 0 {
		return
	}
	w.epoch.Add(1)
	w.mu.Lock()
	for _, ev := range w.evs {
		ev.Set()
	}
	w.mu.Unlock()
}

// watch counts a Select that is about to read the epoch and make its
// attempts; unwatch when it returns.
func (w *selectWaiters) watch()   { w.watchers.Add(1) }
func (w *selectWaiters) unwatch() { w.watchers.Add(-1) }

// add registers ev; it returns the function that unregisters it.
func (w *selectWaiters) add(ev *poller.Event) func() {
	w.mu.Lock()
	w.evs = append(w.evs, ev)
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i, e := range w.evs {
			if e == ev {
				w.evs = append(w.evs[:i], w.evs[i+1:]...)
				break
			}
		}
	}
}
