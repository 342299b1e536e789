package endpoints

import (
	"context"
	"errors"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
)

// The reading end of a ring: records found, delivered in place and freed,
// under the message-transport core's rules (msgcore.go).

func (r *ringEnd) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	return r.recv(ctx, true, deliver)
}

func (r *ringEnd) TryRecvMsg(deliver func(uint32, []byte) error) error {
	return r.recv(context.Background(), false, deliver)
}

func (r *ringEnd) recv(ctx context.Context, block bool, deliver func(uint32, []byte) error) error {
	switch {
	case !r.made():
		return r.notMade("recv")
	case r.writer:
		return errors.New("receive on the sending end of a ring")
	}
	if !r.enter() {
		return os.ErrClosed
	}
	defer r.leave()
	return receive(ctx, &r.core, r, block, deliver)
}

// take finds the next record (see msgSource); it stays in the ring until
// hand or drop frees it.
func (r *ringEnd) take(ctx context.Context, block bool) (rawMsg, error) {
	var err error = unix.EAGAIN
	if !r.guard {
		// A record there, the common case: no wait or fault guard to set up.
		err = r.tryRead()
	}
	switch {
	case err != unix.EAGAIN:
	case block && r.bell != nil:
		err = r.bellRead(ctx)
	case block:
		err = ringDo(ctx, r, (*ringEnd).tryRead, (*ringEnd).blockRead, r)
	default:
		if err = ringTry(r, (*ringEnd).tryRead, r); err == ipcchan.ErrWouldBlock {
			err = unix.EAGAIN
		}
	}
	if err != nil {
		return rawMsg{}, err
	}
	return r.cur, nil
}

// hand delivers the record in place, under the fault guard, and frees it.
func (r *ringEnd) hand(m rawMsg, deliver func(uint32, []byte) error) error {
	if !r.guard {
		// Memory that cannot vanish: no guard, and no closure to call.
		err := deliver(m.tag, m.body)
		r.advance(r.curEnd)
		return err
	}
	var err error
	if ferr := r.m.access(func() error {
		err = deliver(m.tag, m.body)
		r.advance(r.curEnd)
		return nil
	}); ferr != nil {
		return ferr
	}
	return err
}

// drop frees the record without delivering it.
func (r *ringEnd) drop(rawMsg) {
	r.m.access(func() error { r.advance(r.curEnd); return nil })
}

// tryRead finds the next record and holds it in r.cur, passing over
// padding, or returns unix.EAGAIN when the ring is empty.
func (r *ringEnd) tryRead() error {
	rm := r.r
	for {
		tail := atomic.LoadUint64(rm.tail)
		// The head read last time usually shows more records; only when
		// it does not is the writers' cache line read again.
		used := r.headSeen - tail
		if used == 0 || used > rm.capacity {
			r.headSeen = atomic.LoadUint64(rm.head)
			var err error
			if used, err = rm.span(r.headSeen, tail); err != nil {
				return err
			}
			if used == 0 {
				return unix.EAGAIN
			}
		}
		flags, tag, payload, size, err := rm.record(tail, used)
		if err != nil {
			return err
		}
		if flags&recPad != 0 {
			r.advance(tail + size)
			continue
		}
		r.cur, r.curEnd = rawMsg{tag: tag, body: payload}, tail+size
		if flags&recEOS != 0 {
			r.cur.kind = msgMarker
		}
		return nil
	}
}

// advance frees the ring up to tail and wakes parked writers once half of
// it is free: a writer that outruns the reader then parks once per half
// ring rather than once per record. (Records are at most half the ring,
// so the room a writer waits for is there by then.)
func (r *ringEnd) advance(tail uint64) {
	atomic.StoreUint64(r.r.tail, tail)
	if atomic.LoadUint32(r.r.wwait) != 0 && r.headSeen-tail <= r.r.capacity/2 {
		r.ring(r.r.wwait)
	}
}

func (r *ringEnd) blockRead() error { return parkOn(r.r.rwait, false, (*ringEnd).tryRead, r, nil) }
