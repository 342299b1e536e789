package ipcchan

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/ipcchan/ipcchan/internal/poller"
)

// Case is one receive in a [Select]. Make one with [OnRecv].
type Case struct {
	c selectCase
}

type selectCase interface {
	// try receives one value if one is ready and hands it to the case's
	// function; it returns ErrWouldBlock when none is, and busy when
	// another goroutine holds the receiver.
	try() (busy bool, err error)
	// watch adds what signals the case's readiness to set and returns a
	// function that releases it; ok is false if the case cannot be
	// watched (the set is then polled).
	watch(set *poller.Set) (release func(), ok bool, err error)
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

func (c *recvCase[T]) try() (bool, error) {
	v, busy, err := c.r.tryRecv()
	if err == nil && c.f != nil {
		c.f(v)
	}
	return busy, err
}

func (c *recvCase[T]) watch(set *poller.Set) (func(), bool, error) {
	// The Receiver's own event shows Close and values handed back by Chan.
	fd, ok, err := c.r.wake.acquire()
	if err != nil || !ok {
		return nil, ok, err
	}
	release := c.r.wake.release
	if err := set.AddFD(fd); err != nil {
		release()
		return nil, false, err
	}
	p, ok := c.r.t.(Pollable)
	if !ok {
		return release, false, nil
	}
	if rc, err := p.SyscallConn(); err == nil {
		// An error here means the transport is closed: the next try
		// reports that.
		set.AddConn(rc)
	}
	return release, true, nil
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
// descriptor; it starts no goroutine per case. Cases whose transport has no
// descriptor are polled every millisecond.
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
	for {
		anyBusy := false
		start := 0
		if len(cases) > 1 && !ordered {
			start = rand.IntN(len(cases))
		}
		for i := range cases {
			k := (start + i) % len(cases)
			c := cases[k].c
			if c == nil {
				continue
			}
			busy, err := c.try()
			if err != ErrWouldBlock {
				return k, err
			}
			anyBusy = anyBusy || busy
		}
		if err := waitCases(ctx, cases, anyBusy); err != nil {
			return -1, err
		}
	}
}

// waitCases waits until one of the cases may be ready. It returns early,
// after a short sleep, when some case cannot be watched or is busy in
// another goroutine.
func waitCases(ctx context.Context, cases []Case, poll bool) error {
	set, err := poller.NewSet()
	if err != nil {
		return err
	}
	defer set.Close()
	for _, cs := range cases {
		if cs.c == nil {
			continue
		}
		release, ok, err := cs.c.watch(set)
		if release != nil {
			defer release()
		}
		if err != nil {
			return err
		}
		poll = poll || !ok
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
