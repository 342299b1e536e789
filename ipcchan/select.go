package ipcchan

import (
	"context"
	"github.com/ipcchan/go/ipcchan/transport"
	"math/rand/v2"
	"time"

	"github.com/ipcchan/go/internal/poller"
)

// Case is one receive in a [Select]. Make one with [OnRecv].
type Case struct {
	c selectCase
}

type selectCase interface {
	// epoch returns the count of changes of the case's receiver (see
	// selectWaiters), read before try.
	epoch() uint64
	// try receives one value if one is ready and hands it to the case's
	// function; it returns ErrWouldBlock when none is (or another
	// goroutine is receiving: that goroutine reports its change), with
	// poll set if the transport waits for something its descriptor does
	// not show.
	try() (poll bool, err error)
	// watch registers ev to be set at every change of the case's receiver
	// and adds the transport's descriptor to set; it returns the function
	// that undoes both. pollable is false if the transport has no
	// descriptor (the Select then polls).
	watch(set *poller.Set, ev *poller.Event) (release func(), pollable bool)
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

func (c *recvCase[T]) epoch() uint64 { return c.r.selects.epoch.Load() }

func (c *recvCase[T]) try() (bool, error) {
	v, poll, err := c.r.tryRecv()
	if err == nil && c.f != nil {
		c.f(v)
	}
	return poll, err
}

func (c *recvCase[T]) watch(set *poller.Set, ev *poller.Event) (func(), bool) {
	release := c.r.selects.add(ev)
	p, ok := c.r.t.(transport.Pollable)
	if !ok {
		return release, false
	}
	if rc, err := p.SyscallConn(); err == nil {
		// An error here means the transport is closed: the next try
		// reports that.
		set.AddConn(rc)
	}
	return release, true
}

// Select waits until one of the cases can receive, receives one value there,
// calls that case's function with it, and returns the case's index. When
// several cases are ready it picks one at random, as a select statement does.
//
// If a case's receive fails, Select returns its index and the error: io.EOF
// at end of stream (drop that case, as a nil channel disables a case of a
// select statement), an error wrapping os.ErrClosed, a decode error. If ctx
// ends first, Select returns -1 and ctx.Err(). With no non-nil case, Select
// blocks until ctx ends.
//
// Select parks one goroutine on one epoll set that holds every receiver's
// descriptor and an event each receiver sets when another goroutine's
// receive, a value handed back or Close changes it; it starts no goroutine
// per case. Cases whose transport has no descriptor are polled every
// millisecond.
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
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	var buf [8]uint64
	epochs := buf[:0]
	if len(cases) > len(buf) {
		epochs = make([]uint64, 0, len(cases))
	}
	epochs = epochs[:len(cases)]
	for {
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
		if err := waitCases(ctx, cases, epochs, poll); err != nil {
			return -1, wrapError("select", "", err)
		}
	}
}

// waitCases waits until one of the cases may be ready: its transport's
// descriptor is readable, or its receiver changed since epochs were read
// (another goroutine's receive, a value handed back, Close). With poll set,
// or cases whose transport has no descriptor, it returns after a
// millisecond at most, for them to be polled.
func waitCases(ctx context.Context, cases []Case, epochs []uint64, poll bool) error {
	set, err := poller.NewSet()
	if err != nil {
		return err
	}
	defer set.Close()
	ev, err := poller.NewEvent()
	if err != nil {
		return err
	}
	defer ev.Close()
	if err := set.AddFD(ev.FD()); err != nil {
		return err
	}
	for _, cs := range cases {
		if cs.c == nil {
			continue
		}
		release, pollable := cs.c.watch(set, ev)
		defer release()
		poll = poll || !pollable
	}
	// A change between the attempt and the registration set no event.
	for k, cs := range cases {
		if cs.c != nil && cs.c.epoch() != epochs[k] {
			return nil
		}
	}
	if !poll {
		return set.Wait(ctx)
	}
	wctx, cancel := context.WithTimeout(ctx, time.Millisecond)
	defer cancel()
	if err := set.Wait(wctx); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}
