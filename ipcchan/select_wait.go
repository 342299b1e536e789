package ipcchan

import (
	"sync"
	"sync/atomic"

	"github.com/ipcchan/go/internal/poller"
)

// selectWaiters lets a Select wait on a Receiver whose state is not all in
// its transport's descriptor. Another goroutine's receive may leave whole
// frames in a stream's buffer, or take a queue's last end-of-stream marker,
// and the descriptor then says nothing; values handed back by a Chan
// goroutine and Close are not in it either. So every Select waiting on the
// Receiver registers an event of its own, and the Receiver sets each one
// after any such change; the epoch lets a Select see a change that came
// between its attempt and its registration.
type selectWaiters struct {
	epoch atomic.Uint64 // changes so far
	n     atomic.Int32  // len(evs), read without mu
	mu    sync.Mutex
	evs   []*poller.Event
}

// changed records a change and wakes the waiting Selects. The Receiver
// calls it after the change is visible: after a receive has let go of the
// receive lock, after a value is handed back, at Close.
func (w *selectWaiters) changed() {
	w.epoch.Add(1)
	if w.n.Load() == 0 {
		return
	}
	w.mu.Lock()
	for _, ev := range w.evs {
		ev.Set()
	}
	w.mu.Unlock()
}

// add registers ev; it returns the function that unregisters it.
func (w *selectWaiters) add(ev *poller.Event) func() {
	w.mu.Lock()
	w.evs = append(w.evs, ev)
	w.n.Store(int32(len(w.evs)))
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
		w.n.Store(int32(len(w.evs)))
	}
}
