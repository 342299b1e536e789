package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// Event is a notification shared between processes, for the "something
// changed, go look at the shared state" pattern: Python's
// multiprocessing.Event across processes, in shared memory (PROTOCOL.md
// §14, which a C program can follow too), optionally carrying a 64-bit
// counter or a 64-bit bit set.
//
// The flag: [Event.Set] sets it and wakes every waiter in every process
// (a futex wake-all); [Event.Clear] clears it; [Event.Wait] returns at once
// while it is set, and otherwise once a Set (or Notify, or Raise) has
// happened since Wait began — even if a Clear followed before the waiter
// ran, so that set-then-clear cycles lose no wake-up. [Event.IsSet] reads
// it.
//
// The payloads, both of which also set the flag and wake every waiter:
// [Event.Notify] adds to a counter, which [Event.WaitCount] waits to see
// move past the value a waiter last saw (each waiter keeps its own, so
// none misses a change another consumed); [Event.Raise] ORs bits into a
// bit set, which [Event.Take] empties and returns (each bit goes to one
// taker; [Event.WaitTake] waits for one).
//
// A notification with nobody waiting makes no system call: an atomic
// compare-and-swap and a load. Waiting goroutines of one process share one
// OS thread, parked on the futex (no thread per waiter); they themselves
// wait on a channel, so that cancellation is immediate. [Event.Receiver]
// makes the event a channel, which ipcchan.Select waits on through a
// doorbell that thread rings (no polling).
//
// Make one with [NewEvent] (anonymous memory, handed to children with
// [Pass] or [Share] and picked up with [InheritEvent]), [CreateEvent] and
// [OpenEvent] (by name), or [FormatEvent] and [OpenEventIn] (in a mapping
// of your own, beside the state it announces). Its methods are safe for
// concurrent use. Close releases this process's handle; the event itself
// lives as long as its memory.
//
// A peer that scribbles over the event's words can only make waiters wake
// up for nothing, see wrong values, or wake up late — at most 100 ms
// after the change: a parked waiter looks again that often. A
// peer that shrinks memory that can shrink (a named event's object, a
// file) makes every call return an error wrapping [ErrCorrupt], for good.
type Event struct {
	m     *Mapping // the event's own mapping
	w     *eventMem
	desc  string
	calls callGuard // calls using the memory, and the parked thread; Close waits for them

	closing   chan struct{} // closed by Close: waiters return
	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	waiting  int                     // goroutines of this process waiting on wake
	watching bool                    // the parked thread (watch) runs
	seen     uint32                  // the state the waiters found, while watching
	wake     chan struct{}           // closed, and replaced, when watch sees state differ from seen
	armed    map[*eventRecv]struct{} // Receivers whose doorbell a Select waits on (Arm)
}

// eventRecheck is how long a parked waiter sleeps on the futex before it
// looks at the event again: the bound on a wake-up that a peer
// scribbling over the event made the notifier skip, on noticing memory a
// peer truncated, and on the parked thread's life after its last waiter
// left.
var eventRecheck atomic.Int64 // nanoseconds; the tests may change it (SetEventRecheck)

func init() { eventRecheck.Store(int64(100 * time.Millisecond)) }

// NewEvent returns a clear event in anonymous shared memory (a memfd,
// sealed against shrinking): nothing names it, so nothing is left behind
// however the program ends. Hand it to a child with [Pass] or [Share]; the
// child picks it up with [InheritEvent].
func NewEvent() (*Event, error) {
	m, err := NewMemfd("ipcchan-event", EventSize)
	if err != nil {
		return nil, err
	}
	formatEvent(m.data)
	return newEventOn(m, 0, "event in "+m.desc)
}

// CreateEvent creates the named event name ("/something", a POSIX shared
// memory object in /dev/shm of EventSize bytes), clear, and returns it;
// other processes open it with [OpenEvent]. An existing object is refused
// (wrapping os.ErrExist). Mode from ipcchan.WithPerm, 0600 by default (the
// one option it honours). Remove the name with [Event.Remove].
func CreateEvent(name string, opts ...ipcchan.Option) (*Event, error) {
	m, err := CreateShm(name, EventSize, opts...)
	if err != nil {
		return nil, err
	}
	formatEvent(m.data) // fresh memory, reserved: nothing can fault yet
	remove := m.remove
	e, err := newEventOn(m, 0, "event "+name)
	if err != nil {
		remove() // made here: leave nothing behind
	}
	return e, err
}

// OpenEvent opens the named event name that [CreateEvent] made (in this
// or another process). An object that is not an event is refused with an
// error wrapping ErrCorrupt or ErrMappingSize. With
// ipcchan.WithWaitForCreate, the one option it honours, it waits for the
// event to be created and formatted instead.
func OpenEvent(name string, opts ...ipcchan.Option) (*Event, error) {
	m, err := OpenShm(name, opts...)
	if err != nil {
		return nil, err
	}
	cfg, err := newConfig("open", "event "+name, optWait, opts)
	if err == nil {
		err = awaitEventFormat(m, 0, cfg)
	}
	if err != nil {
		m.Close()
		return nil, err
	}
	return newEventOn(m, 0, "event "+name)
}

// FormatEvent writes a clear event into m at offset (8-byte aligned,
// EventSize bytes; a cache line of its own, offset a multiple of 64, is
// best), where every process that maps m opens it with [OpenEventIn]:
// beside the state it announces, say. Format it once, before anyone opens
// it; formatting an event in use loses its waiters' wake-ups. It returns
// an error wrapping ErrMappingSize if the event does not fit at offset.
func FormatEvent(m *Mapping, offset int) error {
	if !m.made() {
		return m.notMade("format event")
	}
	if !m.uses.enter() {
		return m.opErr("format event", os.ErrClosed)
	}
	defer m.uses.leave()
	if err := eventFits(len(m.data), offset); err != nil {
		return m.opErr("format event", err)
	}
	return m.opErr("format event", m.access(func() error {
		formatEvent(m.data[offset:])
		return nil
	}))
}

// OpenEventIn returns the event that [FormatEvent] wrote at offset in m,
// in this or another process. It maps the object again for itself, so m
// may be closed afterwards. With ipcchan.WithWaitForCreate, the one option
// it honours, it waits (polling) for the event to be formatted.
func OpenEventIn(m *Mapping, offset int, opts ...ipcchan.Option) (*Event, error) {
	if !m.made() {
		return nil, m.notMade("open event")
	}
	desc := fmt.Sprintf("event at %d in %s", offset, m.desc)
	cfg, err := newConfig("open", desc, optWait, opts)
	if err != nil {
		return nil, err
	}
	if err := eventFits(m.Len(), offset); err != nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: err}
	}
	own, err := m.remap()
	if err != nil {
		return nil, err
	}
	if err := awaitEventFormat(own, offset, cfg); err != nil {
		own.Close()
		return nil, err
	}
	return newEventOn(own, offset, desc)
}

// InheritEvent returns the event the parent process handed down under name
// with [Pass] or [Share] (see [Attach]). Each name can be inherited once.
func InheritEvent(name string) (*Event, error) {
	fd, desc, _, err := claimInherited(name, useEvent)
	if err != nil {
		return nil, err
	}
	m, err := mapWhole(fd, desc, nil)
	if err != nil {
		return nil, err
	}
	return newEventOn(m, 0, "event "+desc)
}

// eventFits checks that an event fits at offset of a mapping of size
// bytes.
func eventFits(size, offset int) error {
	if offset < 0 || offset%8 != 0 || offset > size-EventSize {
		return fmt.Errorf("%w: an event takes %d bytes at an 8-byte aligned offset: %d does not fit in %d bytes", ErrMappingSize, EventSize, offset, size)
	}
	return nil
}

// awaitEventFormat waits, if cfg says so (ipcchan.WithWaitForCreate),
// until the event at offset in m is formatted: its version word, which
// FormatEvent stores last, is set. Memory has no event to wait on: it
// polls.
func awaitEventFormat(m *Mapping, offset int, cfg *transport.Config) error {
	desc := "event in " + m.desc
	wctx, release, err := waitContext(cfg, nil, "open", desc)
	if err != nil || wctx == nil {
		return err
	}
	defer release()
	return awaitCreate(wctx, desc, "", func() (openState, error) {
		var v uint32
		err := m.access(func() error {
			if offset+EventSize <= len(m.data) {
				v = eventVersionOf(m.data[offset:])
			}
			return nil
		})
		if err == nil && v == 0 {
			return notReady, nil
		}
		return opened, m.opErr("open event", err)
	})
}

// newEventOn returns the Event at offset in m, its own mapping, which it
// takes over (and closes on error).
func newEventOn(m *Mapping, offset int, desc string) (*Event, error) {
	if err := eventFits(len(m.data), offset); err != nil {
		m.Close()
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: err}
	}
	var w *eventMem
	err := m.access(func() error {
		var err error
		w, err = openEventMem(m.data[offset : offset+EventSize])
		return err
	})
	if err != nil {
		m.Close()
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: err}
	}
	return &Event{m: m, w: w, desc: desc, closing: make(chan struct{}), wake: make(chan struct{})}, nil
}

// made reports whether a constructor made e.
func (e *Event) made() bool { return e != nil && e.w != nil }

func (e *Event) notMade(op string) error {
	return errNotMade(op, "Event", "NewEvent, CreateEvent, OpenEvent, OpenEventIn or InheritEvent")
}

// String describes the event.
func (e *Event) String() string {
	if !e.made() {
		return "zero Event"
	}
	return e.desc
}

// begin lets a call in: nil, or the error for op on an event nobody made
// or closed. A nil error must be followed by e.calls.leave().
func (e *Event) begin(op string) error {
	if !e.made() {
		return e.notMade(op)
	}
	if !e.calls.enter() {
		return &ipcchan.OpError{Op: op, Endpoint: e.desc, Err: os.ErrClosed}
	}
	return nil
}

// guarded runs f on the event's memory under the fault guard, for a
// mapping that needs one; the error is the mapping's fault error,
// wrapped for op.
func (e *Event) guarded(op string, f func()) (err error) {
	if err := e.m.faultErr(); err != nil {
		return &ipcchan.OpError{Op: op, Endpoint: e.desc, Err: err}
	}
	defer func() {
		if err != nil {
			err = &ipcchan.OpError{Op: op, Endpoint: e.desc, Err: err}
		}
	}()
	defer e.m.catchFault(&err, debug.SetPanicOnFault(true))
	f()
	return nil
}

// notify sets the flag, advances the change counter, and wakes the
// waiters if any announced themselves (PROTOCOL.md §14's wake rule): the
// change first, then the announcement, read once the change is visible.
func (w *eventMem) notify() {
	for {
		s := atomic.LoadUint32(w.state)
		if atomic.CompareAndSwapUint32(w.state, s, (s+evStep)|evSet) {
			break
		}
	}
	w.wakeAnnounced()
}

// clear clears the flag; like every change of state, it wakes the
// announced waiters (those of WaitCount, WaitTake and Receivers may sleep
// on a set event's state), who look and sleep again.
func (w *eventMem) clear() {
	for {
		s := atomic.LoadUint32(w.state)
		if s&evSet == 0 {
			return
		}
		if atomic.CompareAndSwapUint32(w.state, s, s&^evSet) {
			break
		}
	}
	w.wakeAnnounced()
}

// wakeAnnounced wakes every waiter on state if one announced itself,
// taking the announcement back.
func (w *eventMem) wakeAnnounced() {
	if atomic.LoadUint32(w.waiters) != 0 && atomic.SwapUint32(w.waiters, 0) != 0 {
		sys.FutexWake(w.state, 1<<30)
	}
}

// Set sets the event and wakes every waiter, in every process. It makes
// no system call when nobody waits. Setting a set event still counts as a
// change for [Event.Receiver]s. It returns an error wrapping os.ErrClosed
// after Close, ErrCorrupt on memory a peer shrank.
func (e *Event) Set() error {
	if err := e.begin("set"); err != nil {
		return err
	}
	defer e.calls.leave()
	if e.m.guard {
		return e.guarded("set", e.w.notify)
	}
	e.w.notify()
	return nil
}

// Clear clears the event: Wait waits again. A Wait already waiting when a
// Set came returns even if Clear follows before it runs. Errors as Set's.
func (e *Event) Clear() error {
	if err := e.begin("clear"); err != nil {
		return err
	}
	defer e.calls.leave()
	clearFlag := e.w.clear
	if e.m.guard {
		return e.guarded("clear", clearFlag)
	}
	clearFlag()
	return nil
}

// IsSet reports whether the event is set. It reports false after Close
// and on memory a peer shrank.
func (e *Event) IsSet() bool {
	if e.begin("is set") != nil {
		return false
	}
	defer e.calls.leave()
	var s uint32
	load := func() { s = atomic.LoadUint32(e.w.state) }
	if e.m.guard {
		if e.guarded("is set", load) != nil {
			return false
		}
	} else {
		load()
	}
	return s&evSet != 0
}

// Notify adds n to the event's counter, sets the event and wakes every
// waiter, as Set does; it returns the new count (which wraps around at
// 2⁶⁴). Errors as Set's.
func (e *Event) Notify(n uint64) (uint64, error) {
	if err := e.begin("notify"); err != nil {
		return 0, err
	}
	defer e.calls.leave()
	var c uint64
	add := func() {
		c = atomic.AddUint64(e.w.count, n)
		e.w.notify()
	}
	if e.m.guard {
		err := e.guarded("notify", add)
		return c, err
	}
	add()
	return c, nil
}

// Count returns the event's counter. Errors as Set's.
func (e *Event) Count() (uint64, error) {
	if err := e.begin("count"); err != nil {
		return 0, err
	}
	defer e.calls.leave()
	var c uint64
	load := func() { c = atomic.LoadUint64(e.w.count) }
	if e.m.guard {
		err := e.guarded("count", load)
		return c, err
	}
	load()
	return c, nil
}

// Raise ORs bits into the event's bit set, sets the event and wakes every
// waiter, as Set does. Errors as Set's.
func (e *Event) Raise(bits uint64) error {
	if err := e.begin("raise"); err != nil {
		return err
	}
	defer e.calls.leave()
	or := func() {
		atomic.OrUint64(e.w.bits, bits)
		e.w.notify()
	}
	if e.m.guard {
		return e.guarded("raise", or)
	}
	or()
	return nil
}

// Take empties the event's bit set and returns the bits it held (0 if
// none): each bit raised goes to one Take. It does not wait (see
// WaitTake) and leaves the flag alone. Errors as Set's.
func (e *Event) Take() (uint64, error) {
	if err := e.begin("take"); err != nil {
		return 0, err
	}
	defer e.calls.leave()
	var b uint64
	take := func() { b = atomic.SwapUint64(e.w.bits, 0) }
	if e.m.guard {
		err := e.guarded("take", take)
		return b, err
	}
	take()
	return b, nil
}

// Wait returns once the event is set: at once if it is, otherwise once a
// Set, Notify or Raise comes (even if a Clear follows before this
// goroutine runs). It returns ctx.Err() when ctx ends first, an error
// wrapping os.ErrClosed once Close is called, ErrCorrupt on memory a peer
// shrank.
func (e *Event) Wait(ctx context.Context) error {
	if err := e.begin("wait"); err != nil {
		return err
	}
	defer e.calls.leave()
	var start uint32
	first := true
	return e.await("wait", ctx, nil, func(s uint32) bool {
		if first {
			start, first = s, false
		}
		return s&evSet != 0 || s>>1 != start>>1
	})
}

// WaitCount waits until the event's counter is not seen — the count this
// waiter last saw, which it passes back each time — and returns it: at
// once if it moved already, so that no Notify is missed however late the
// waiter comes back. Errors as Wait's.
func (e *Event) WaitCount(ctx context.Context, seen uint64) (uint64, error) {
	if err := e.begin("wait count"); err != nil {
		return 0, err
	}
	defer e.calls.leave()
	var c uint64
	err := e.await("wait count", ctx, nil, func(uint32) bool {
		c = atomic.LoadUint64(e.w.count)
		return c != seen
	})
	return c, err
}

// WaitTake waits until the event's bit set holds a bit, empties it and
// returns the bits it held, as Take does. Errors as Wait's.
func (e *Event) WaitTake(ctx context.Context) (uint64, error) {
	if err := e.begin("wait take"); err != nil {
		return 0, err
	}
	defer e.calls.leave()
	var b uint64
	err := e.await("wait take", ctx, nil, func(uint32) bool {
		b = atomic.SwapUint64(e.w.bits, 0)
		return b != 0
	})
	return b, err
}

// errEventStopped ends an await that its stop channel stopped.
var errEventStopped = errors.New("event receiver stopped")

// await waits until done, given the state word and run on the event's
// memory, reports true; the call is in e.calls. It looks at once, then
// parks: the goroutine counts itself among the waiters of the state it
// read (starting the thread that sleeps on the futex, watch, if none
// runs) and waits for watch to see the state change. ctx, Close and stop
// (if not nil) end the wait.
func (e *Event) await(op string, ctx context.Context, stop <-chan struct{}, done func(state uint32) bool) error {
	if ctx == nil {
		return &ipcchan.OpError{Op: op, Endpoint: e.desc, Err: errNilContext}
	}
	var ok bool
	var s uint32
	look := func() {
		// The state first: a change after this read is one park sees.
		s = atomic.LoadUint32(e.w.state)
		ok = done(s)
	}
	behind := 0 // parks in a row that found watch behind
	for {
		if err := e.access(op, look); err != nil || ok {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		wake, current := e.park(s)
		var recheck <-chan time.Time
		switch {
		case current:
			behind = 0
		case behind == 0:
			// The state changed since this goroutine read it, or since
			// watch last read it: look again at once.
			behind++
			e.unpark()
			continue
		default:
			// Still found differing: watch sleeps on a state that
			// changed without the wake that PROTOCOL.md §14 asks for (a
			// peer scribbled over it). It sees it at its recheck; look
			// again every millisecond meanwhile, without spinning.
			recheck = time.After(time.Millisecond)
		}
		select {
		case <-wake:
			e.unpark()
		case <-recheck:
			e.unpark()
		case <-ctx.Done():
			e.unpark()
			return ctx.Err()
		case <-e.closing:
			e.unpark()
			return &ipcchan.OpError{Op: op, Endpoint: e.desc, Err: os.ErrClosed}
		case <-stop:
			e.unpark()
			return errEventStopped
		}
	}
}

// access runs f on the event's memory, under the fault guard if the
// mapping needs it.
func (e *Event) access(op string, f func()) error {
	if e.m.guard {
		return e.guarded(op, f)
	}
	f()
	return nil
}

// park counts a goroutine that found the state s and waits for it to
// change, and returns the channel watch closes when it sees the state
// differ from what it last saw; current reports whether that is s (else
// the waiter should look again). It starts watch, from s, if it is not
// running; after Close it returns a channel nobody closes (the waiter
// sees e.closing). Every park is undone by unpark.
func (e *Event) park(s uint32) (wake <-chan struct{}, current bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.waiting++
	if !e.watching && e.calls.enter() {
		e.watching, e.seen = true, s
		go e.watch()
	}
	return e.wake, e.seen == s
}

// unpark uncounts a goroutine that park counted.
func (e *Event) unpark() {
	e.mu.Lock()
	e.waiting--
	e.mu.Unlock()
}

// watch is the one thread of this process parked on the event's futex
// while goroutines wait: it follows the waiter's rule of PROTOCOL.md §14
// (read state, announce itself in waiters, read state again, sleep while
// state holds what it read, for at most eventRecheck) and, whenever state
// differs from seen (what the waiters it counts found), wakes them. It
// stops once none waits (at the next change or recheck), at Close, and
// when the memory faults.
func (e *Event) watch() {
	defer e.calls.leave() // entered by park
	timeout := unix.NsecToTimespec(eventRecheck.Load())
	var s uint32
	read := func() error {
		s = atomic.LoadUint32(e.w.state)
		return nil
	}
	sleep := func() error {
		atomic.StoreUint32(e.w.waiters, 1)
		if atomic.LoadUint32(e.w.state) == s && sys.FutexWait(e.w.state, s, &timeout) == unix.EFAULT {
			return e.m.broke("a futex wait (EFAULT)")
		}
		return nil
	}
	for {
		err := e.m.access(read)
		e.mu.Lock()
		if err != nil || s != e.seen {
			// A change (or the memory gone, which the waiters see when
			// they look): wake the waiters.
			e.seen = s
			e.wakeAll()
		}
		if err != nil || e.waiting == 0 && len(e.armed) == 0 || e.calls.closed() {
			e.watching = false
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		if err := e.m.access(sleep); err != nil {
			e.mu.Lock()
			e.wakeAll()
			e.watching = false
			e.mu.Unlock()
			return
		}
	}
}

// wakeAll wakes the goroutines that wait, and rings the doorbells of the
// armed Receivers; e.mu is held.
func (e *Event) wakeAll() {
	close(e.wake)
	e.wake = make(chan struct{})
	for t := range e.armed {
		t.bell.Control(func(fd int) { addToBell(fd, 1) })
		delete(e.armed, t)
	}
}

// File returns a duplicate of the descriptor of the event's memory, to
// hand to another process ([Pass] and [Share] call it; the child uses
// [InheritEvent]). An event in a SysV segment has none
// (ipcchan.ErrNotSupported).
func (e *Event) File() (*os.File, error) {
	if err := e.begin("file"); err != nil {
		return nil, err
	}
	defer e.calls.leave()
	return e.m.File()
}

// Remove removes a named event's name (CreateEvent, OpenEvent), or the
// object an event in a named mapping lives in; it stays usable where it
// is open. For an event in anonymous memory it does nothing.
func (e *Event) Remove() error {
	if !e.made() {
		return e.notMade("remove")
	}
	return e.m.Remove()
}

// Close releases this process's handle on the event: waiting calls (and
// the receives of its Receivers) return an error wrapping os.ErrClosed,
// and the memory is unmapped once they have. The event itself, and other
// handles on it, stay as they are. Close is idempotent.
func (e *Event) Close() error {
	if !e.made() {
		return e.notMade("close")
	}
	e.closeOnce.Do(func() {
		e.calls.close()
		close(e.closing)
		// Selects waiting on Receivers' doorbells try again, and find
		// the event closed.
		e.mu.Lock()
		e.wakeAll()
		e.mu.Unlock()
		// The parked thread is a call: wake it (and, the futex being
		// shared, other processes' waiters, which look and sleep again)
		// until it has gone.
		drained := e.calls.drainedChan()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			e.mu.Lock()
			watching := e.watching
			e.mu.Unlock()
			if watching {
				sys.FutexWake(e.w.state, 1<<30)
			}
			select {
			case <-drained:
				e.closeErr = e.m.Close()
				return
			case <-tick.C:
			}
		}
	})
	return e.closeErr
}
