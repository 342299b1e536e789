package ipcchan

import (
	"context"
	"math/rand/v2"
	"syscall"
	"time"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan/transport"
)

// Case is one receive or one send in a [Select]. Make one with [OnRecv] or
// [OnSend].
type Case struct {
	c selectCase
}

type selectCase interface {
	// waiters returns the case's end's Selects.
	waiters() *selectWaiters
	// epoch returns the count of changes of the case's end (see
	// selectWaiters), read before try.
	epoch() uint64
	// try receives or sends one value if that can be done at once and
	// calls the case's function; it returns ErrWouldBlock when it cannot
	// (or another goroutine is receiving or sending: that goroutine reports
	// its change), with poll set if the transport waits for something its
	// descriptor does not show.
	try() (poll bool, err error)
	// watch registers ev to be set at every change of the case's end and
	// adds the transport's descriptor to set, to be reported readable
	// (receive) or writable (send); it returns the function that undoes
	// both. pollable is false if the transport has no descriptor (the
	// Select then polls); ready is true if the transport's doorbell (see
	// transport.Doorbell) says it may proceed already.
	watch(set *poller.Set, ev *poller.Event) (release func(), pollable, ready bool)
}

// OnRecv returns a Case that receives a value from r and calls f with it.
// A Case with a nil r is never ready, like a receive from a nil channel.
func OnRecv[T any](r *Receiver[T], f func(T)) Case {
	if r == nil {
		return Case{}
	}
	return Case{&recvCase[T]{r: r, f: f}}
}

type recvCase[T any] struct {
	r *Receiver[T]
	f func(T)
}

func (c *recvCase[T]) waiters() *selectWaiters { return &c.r.selects }
func (c *recvCase[T]) epoch() uint64           { return c.r.selects.epoch.Load() }

func (c *recvCase[T]) try() (bool, error) {
	v, poll, err := c.r.tryRecv()
	if err == nil && c.f != nil {
		c.f(v)
	}
	return poll, err
}

func (c *recvCase[T]) watch(set *poller.Set, ev *poller.Event) (func(), bool, bool) {
	return watchEnd(set, ev, &c.r.selects, c.r.t, set.AddConn)
}

// OnSend returns a Case that sends v on s, when s can take it without
// waiting, and then calls f (if not nil): the case `case ch <- v: f()` of a
// select statement. v is encoded each time the case is tried; a case that is
// not chosen — another case was ready first, or ctx ended — sends nothing.
// A Case with a nil s is never ready, like a send on a nil channel.
//
// A Sender "can take" a value when its transport has room for it now: a
// pipe or socket with room in the kernel (or in the Sender's buffer), a
// queue that is not full, a ring with room for the record. While another
// goroutine sends on s, the case waits for it to finish.
func OnSend[T any](s *Sender[T], v T, f func()) Case {
	if s == nil {
		return Case{}
	}
	return Case{&sendCase[T]{s: s, v: v, f: f}}
}

type sendCase[T any] struct {
	s *Sender[T]
	v T
	f func()
}

func (c *sendCase[T]) waiters() *selectWaiters { return &c.s.selects }
func (c *sendCase[T]) epoch() uint64           { return c.s.selects.epoch.Load() }

func (c *sendCase[T]) try() (bool, error) {
	err := c.s.trySend(c.v)
	if err == nil && c.f != nil {
		c.f()
	}
	return false, err
}

func (c *sendCase[T]) watch(set *poller.Set, ev *poller.Event) (func(), bool, bool) {
	add := set.AddWriteConn
	if _, ok := c.s.t.(transport.Doorbell); ok {
		// A doorbell is rung, for a sender too: it becomes readable. (An
		// eventfd is always writable.)
		add = set.AddConn
	}
	return watchEnd(set, ev, &c.s.selects, c.s.t, add)
}

// watchEnd registers ev with an end's waiters and adds its transport t's
// descriptor to set with add (AddConn to receive, AddWriteConn to send); it
// returns the function that unregisters ev, whether t has a descriptor,
// and whether t's doorbell, armed, says it may proceed already.
func watchEnd(set *poller.Set, ev *poller.Event, w *selectWaiters, t any, add func(syscall.RawConn) error) (func(), bool, bool) {
	release := w.add(ev)
	p, ok := t.(transport.Pollable)
	if !ok {
		return release, false, false
	}
	if rc, err := p.SyscallConn(); err == nil {
		// An error here means the transport is closed: the next try
		// reports that.
		add(rc)
	}
	if d, ok := p.(transport.Doorbell); ok && d.Arm() {
		return release, true, true
	}
	return release, true, false
}

// Select waits until one of the cases can proceed — a receive has a value,
// a send has room — receives or sends one value there, calls that case's
// function, and returns the case's index. When several cases are ready it
// picks one at random, as a select statement does. Receive and send cases
// mix freely; only the chosen case receives or sends anything.
//
// If a case's receive or send fails, Select returns its index and the
// error: io.EOF at end of stream (drop that case, as a nil channel
// disables a case of a select statement), an error wrapping os.ErrClosed,
// ErrPeerGone, a decode or encode error. If ctx ends first, Select returns
// -1 and ctx.Err(). With no non-nil case, Select blocks until ctx ends.
//
// Select parks one goroutine on one epoll set that holds every end's
// descriptor (watched for reading or writing) and an event each end sets
// when another goroutine's receive or send, a value handed back or Close
// changes it; it starts no goroutine per case. The end of the first
// non-nil case keeps that set (two descriptors) for the next Select that
// starts with it, until the end is closed. A ring that RingPair made
// is waited on through its doorbell (an eventfd its peer rings while a
// waiter is announced); cases whose transport has no descriptor (a ring
// opened on a named mapping, SysV queues, semaphores) are polled: every
// millisecond at first, then less and less often while nothing happens,
// down to every 50 ms (selectPollMax), so that a Select left waiting
// costs well under 1 % of a core (each round wakes the process) at the
// price of noticing such a case up to 50 ms late.
func Select(ctx context.Context, cases ...Case) (int, error) {
	return selectCases(ctx, false, cases)
}

// SelectFirst is [Select] with a preference: when several cases are ready,
// the one earliest in the list wins rather than a random one. List urgent
// receivers first (a POSIX queue's high-priority band before its normal
// one, a control channel before a data channel) and urgent traffic always
// overtakes the rest; the cost is that a later case waits for as long as an
// earlier one stays ready.
func SelectFirst(ctx context.Context, cases ...Case) (int, error) {
	return selectCases(ctx, true, cases)
}

func selectCases(ctx context.Context, ordered bool, cases []Case) (int, error) {
	if ctx == nil {
		return -1, &OpError{Op: "select", Err: errNilContext}
	}
	for _, cs := range cases {
		if cs.c != nil {
			cs.c.waiters().watch()
		}
	}
	defer func() {
		for _, cs := range cases {
			if cs.c != nil {
				cs.c.waiters().unwatch()
			}
		}
	}()
	var buf [8]uint64
	epochs := buf[:0]
	if len(cases) > len(buf) {
		epochs = make([]uint64, 0, len(cases))
	}
	epochs = epochs[:len(cases)]
	pollEvery := selectPollFirst
	for {
		// A Select woken again and again (by other goroutines' sends and
		// receives) still ends with ctx.
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		start := 0
		if len(cases) > 1 && !ordered {
			start = rand.IntN(len(cases))
		}
		poll := false
		for i := range cases {
			k := (start + i) % len(cases)
			c := cases[k].c
			if c == nil {
				continue
			}
			epochs[k] = c.epoch()
			p, err := c.try()
			if err != ErrWouldBlock {
				return k, err
			}
			poll = poll || p
		}
		polled, err := waitCases(ctx, cases, epochs, poll, pollEvery)
		if err != nil {
			return -1, wrapError("select", "", err)
		}
		if polled {
			pollEvery = min(pollEvery+pollEvery/4, selectPollMax)
		}
	}
}

// How often a Select polls the cases it cannot wait on: first, and at
// most rarely. Every round costs a wake-up of the process (about 0.1 ms of
// CPU on a virtual machine); the interval grows by a quarter per round that
// found nothing, reaching the maximum after 18 rounds (about 0.2 s).
const (
	selectPollFirst = time.Millisecond
	selectPollMax   = 50 * time.Millisecond
)

// waitCases waits until one of the cases may be ready: its transport's
// descriptor is readable, or its receiver changed since epochs were read
// (another goroutine's receive, a value handed back, Close). With poll set,
// or cases whose transport has no descriptor, it returns after pollEvery at
// most, for them to be polled; polled reports that it waited so.
func waitCases(ctx context.Context, cases []Case, epochs []uint64, poll bool, pollEvery time.Duration) (polled bool, err error) {
	// The first case's end lends the wait set its last Select used.
	var owner *selectWaiters
	for _, cs := range cases {
		if cs.c != nil {
			owner = cs.c.waiters()
			break
		}
	}
	ws := owner.takeWaitSet()
	if ws == nil {
		if ws, err = newWaitSet(); err != nil {
			return false, err
		}
	}
	set, ev := ws.set, ws.ev
	defer func() {
		// Only the owner's descriptor stays (ws.keep): the others' ends
		// may close before the next Select.
		if set.Trim(ws.keep) {
			owner.putWaitSet(ws)
		} else {
			ws.close()
		}
	}()
	ready := false
	first := true
	for _, cs := range cases {
		if cs.c == nil {
			continue
		}
		release, pollable, r := cs.c.watch(set, ev)
		defer release()
		if first { // the owner's: its descriptor stays in the set
			ws.keep = set.Len()
			first = false
		}
		poll = poll || !pollable
		ready = ready || r
	}
	if ready {
		return false, nil
	}
	// A change between the attempt and the registration set no event.
	for k, cs := range cases {
		if cs.c != nil && cs.c.epoch() != epochs[k] {
			return false, nil
		}
	}
	poller.SelectWaits.Add(1)
	if !poll {
		return false, set.Wait(ctx)
	}
	poller.SelectPolls.Add(1)
	wctx, cancel := context.WithTimeout(ctx, pollEvery)
	defer cancel()
	if err := set.Wait(wctx); err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return true, nil // the interval passed with nothing to report
	}
	return false, nil
}
