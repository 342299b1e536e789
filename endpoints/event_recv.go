package endpoints

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
)

// Receiver returns a channel view of the event, for ipcchan.Select and
// the other ways of receiving: each receive waits until the event has
// been set (Set, Notify or Raise) since this Receiver's last receive — for
// the first, since the Receiver was made, or at once if the event was set
// then — and delivers the event's
// counter then. Notifications that come while nobody receives are one
// change: a receive tells that something changed, not how many times
// (Notify's counter says how much). Receivers do not consume anything:
// every Receiver, in every process, sees every change, whatever Clear
// does. Clear, Take and WaitTake stay the event's.
//
// A blocking receive (Recv, All, Chan) parks as Wait does and is woken at
// once. A Select waits on the Receiver's doorbell, an eventfd of this
// process that the event's parked thread rings when the event changes: it
// is woken at once too, polling nothing (the thread stays parked until the
// next change after the Select, or Close, even if the Select returned for
// another case). The Receiver holds that descriptor until closed. Closing the
// Receiver ends its receives (os.ErrClosed) and leaves the event open;
// closing the event ends them too. The Receiver never reports io.EOF: an
// event has no end of stream. Options: those of a Receiver; a WithCodec
// among them is overridden (the counter travels as codec.Binary,
// little-endian).
func (e *Event) Receiver(opts ...ipcchan.Option) (*ipcchan.Receiver[uint64], error) {
	if err := e.begin("receiver"); err != nil {
		return nil, err
	}
	defer e.calls.leave()
	t := &eventRecv{e: e, stop: make(chan struct{})}
	var s uint32
	if err := e.access("receiver", func() { s = atomic.LoadUint32(e.w.state) }); err != nil {
		return nil, err
	}
	t.last.Store(s)
	t.pending.Store(s&evSet != 0)
	c, err := codec.Binary[uint64](binary.LittleEndian)
	if err != nil {
		return nil, err
	}
	bfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "receiver", Endpoint: e.desc, Err: fmt.Errorf("eventfd: %w", sys.DescriptorLimit(err))}
	}
	if t.bell, err = poller.Open(bfd, "doorbell of "+t.String()); err != nil {
		return nil, &ipcchan.OpError{Op: "receiver", Endpoint: e.desc, Err: err}
	}
	rx, err := ipcchan.NewReceiver[uint64](t, append(opts[:len(opts):len(opts)], ipcchan.WithCodec(c))...)
	if err != nil {
		t.Close() // its doorbell
		return nil, err
	}
	return rx, nil
}

// eventRecv is the transport of an event's Receiver: a position in the
// event's changes (the change counter of its state at the last receive).
type eventRecv struct {
	e *Event

	// Written by RecvMsg and TryRecvMsg, which a Receiver calls one at a
	// time, and read by Arm too.
	last    atomic.Uint32 // the state at the last receive, or when made
	pending atomic.Bool   // made on a set event, not received from since
	buf     [8]byte

	// bell is this receiver's doorbell for Select (an eventfd, in this
	// process only): Arm puts the receiver among the event's armed ones,
	// and the event's parked thread (watch) rings it at the next change.
	bell *poller.FD

	stop     chan struct{} // closed by Close and Fail
	stopOnce sync.Once
	closed   atomic.Bool
	failed   atomic.Pointer[error]
}

// news reports whether the state s is news to the receiver.
func (t *eventRecv) news(s uint32) bool {
	return t.pending.Load() || s>>1 != t.last.Load()>>1
}

// take records the state s as received and delivers the counter.
func (t *eventRecv) take(s uint32, deliver func(uint32, []byte) error) error {
	var c uint64
	err := t.e.access("recv", func() { c = atomic.LoadUint64(t.e.w.count) })
	if err != nil {
		return err
	}
	t.last.Store(s)
	t.pending.Store(false)
	binary.LittleEndian.PutUint64(t.buf[:], c)
	return deliver(0, t.buf[:])
}

// stopped returns the error of a receiver closed or failed, or nil.
func (t *eventRecv) stopped() error {
	if t.closed.Load() {
		return os.ErrClosed
	}
	if e := t.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// RecvMsg waits for news and delivers the counter.
func (t *eventRecv) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	if err := t.stopped(); err != nil {
		return err
	}
	e := t.e
	if err := e.begin("recv"); err != nil {
		return err
	}
	defer e.calls.leave()
	var s uint32
	err := e.await("recv", ctx, t.stop, func(st uint32) bool {
		s = st
		return t.news(st)
	})
	if errors.Is(err, errEventStopped) {
		err = t.stopped()
	}
	if err != nil {
		return err
	}
	return t.take(s, deliver)
}

// TryRecvMsg delivers the counter if there is news, and returns
// ipcchan.ErrWouldBlock otherwise.
func (t *eventRecv) TryRecvMsg(deliver func(uint32, []byte) error) error {
	if err := t.stopped(); err != nil {
		return err
	}
	e := t.e
	if err := e.begin("recv"); err != nil {
		return err
	}
	defer e.calls.leave()
	var s uint32
	if err := e.access("recv", func() { s = atomic.LoadUint32(e.w.state) }); err != nil {
		return err
	}
	if !t.news(s) {
		return ipcchan.ErrWouldBlock
	}
	return t.take(s, deliver)
}

// halt ends the receives, disarms the receiver and lets go of its bell
// (a poller.FD closes it once no Select holds it).
func (t *eventRecv) halt() {
	t.stopOnce.Do(func() {
		close(t.stop)
		t.e.mu.Lock()
		delete(t.e.armed, t)
		t.e.mu.Unlock()
		t.bell.Close()
	})
}

// SyscallConn lets ipcchan.Select wait on the receiver's doorbell:
// readable once the event may have news, for a Select that armed it.
func (t *eventRecv) SyscallConn() (syscall.RawConn, error) { return rawConn{t.bell}, nil }

// Arm announces a waiting Select (see transport.Doorbell): it empties the
// bell and reports whether there is news already; if not, it counts the
// receiver among the event's armed ones, starting the event's parked
// thread (watch) if none runs, and watch rings the bell at the next
// change. A Select that returns for another case leaves the receiver
// armed until that change (or the receiver's Close): watch, and its
// thread, stay until then.
func (t *eventRecv) Arm() (ready bool) {
	e := t.e
	if t.stopped() != nil || e.begin("recv") != nil {
		return true // the next try says why
	}
	defer e.calls.leave()
	t.bell.Control(func(fd int) { drainBell(fd) })
	var s uint32
	if e.access("recv", func() { s = atomic.LoadUint32(e.w.state) }) != nil || t.news(s) {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.watching {
		if !e.calls.enter() {
			return true
		}
		e.watching, e.seen = true, s
		go e.watch()
	}
	if e.seen != s {
		return true // changed since watch looked, or since s: try again
	}
	if e.armed == nil {
		e.armed = map[*eventRecv]struct{}{}
	}
	e.armed[t] = struct{}{}
	return false
}

// Fail ends receives with err, for WatchPeer.
func (t *eventRecv) Fail(err error) {
	t.failed.CompareAndSwap(nil, &err)
	t.halt()
}

// Close ends the receives; the event stays open.
func (t *eventRecv) Close() error {
	t.closed.Store(true)
	t.halt()
	return nil
}

func (t *eventRecv) String() string { return "receiver of " + t.e.desc }
