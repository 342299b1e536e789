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
	cache    atomic.Pointer[waitSet] // see takeWaitSet; closedWaitSet after Close
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

// A waitSet is what a Select parks on: an epoll set and the event the
// cases' ends set at a change (in the set). Making one and closing it
// costs several system calls each — closing an epoll instance that the
// runtime poller watches, and an eventfd in it, took about a third of a
// woken Select's time — so the end of a Select's first case keeps the
// one its last Select used, with the end's own descriptor still in it,
// and closes it at its Close: a Select repeated on the same ends makes
// no epoll set and, woken, removes only the other cases' descriptors.
type waitSet struct {
	set  *poller.Set
	ev   *poller.Event
	keep int // descriptors left in set for the next Select: its owner's
}

// closedWaitSet marks the cache of a closed end.
var closedWaitSet = new(waitSet)

func newWaitSet() (*waitSet, error) {
	set, err := poller.NewSet()
	if err != nil {
		return nil, err
	}
	ev, err := poller.NewEvent()
	if err != nil {
		set.Close()
		return nil, err
	}
	if err := set.AddFD(ev.FD()); err != nil {
		set.Close()
		ev.Close()
		return nil, err
	}
	return &waitSet{set: set, ev: ev}, nil
}

func (ws *waitSet) close() {
	ws.set.Close()
	ws.ev.Close()
}

// takeWaitSet returns the wait set the end keeps, or nil if it keeps none
// (or another Select has it). A nil w (a Select with no case) keeps none.
func (w *selectWaiters) takeWaitSet() *waitSet {
	if w == nil {
		return nil
	}
	ws := w.cache.Load()
	if ws == nil || ws == closedWaitSet || !w.cache.CompareAndSwap(ws, nil) {
		return nil
	}
	return ws
}

// putWaitSet gives the end ws, which holds no descriptor but the first
// ws.keep, to keep for its next Select; ws is closed instead if the end
// is closed or keeps one already.
func (w *selectWaiters) putWaitSet(ws *waitSet) {
	ws.ev.Clear()
	if w == nil || !w.cache.CompareAndSwap(nil, ws) {
		ws.close()
	}
}

// dropWaitSet closes the wait set the end keeps, at the end's Close; a
// Select using it then closes it when done.
func (w *selectWaiters) dropWaitSet() {
	if ws := w.cache.Swap(closedWaitSet); ws != nil && ws != closedWaitSet {
		ws.close()
	}
}
