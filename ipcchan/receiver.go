package ipcchan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/ipcchan/ipcchan/codec"
	"github.com/ipcchan/ipcchan/internal/poller"
)

// Receiver is the receiving end of a typed channel that crosses a process
// boundary. It is safe for concurrent use: each message goes to exactly one
// caller.
type Receiver[T any] struct {
	t     MsgReceiver
	codec codec.Codec[T]

	mu        ctxLock // serializes receives; guards the fields below
	dst       *T
	tag       uint32
	val       T
	deliverFn func(uint32, []byte) error

	files          []*os.File // received with the current message (RecvFiles)
	deliverFilesFn func(uint32, []byte, []int) error

	ahead aheadQueue[T] // values read ahead by Chan, handed to the next receive

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error

	wake wakeEvent // lets Select notice Close and handed-back values

	chanErr atomic.Pointer[error]

	peers peerWatches

	// The handshake; guarded by mu.
	hello   []byte         // ours, nil without a handshake
	greeted bool           // a valid hello has arrived
	sticky  error          // a refused handshake: every receive returns it
	limiter MsgSizeLimiter // the transport, limited to a hello's size until greeted
}

// NewReceiver returns a Receiver that reads messages from t and decodes them
// with the configured codec (codec.Default[T] if none). The Receiver owns t
// and closes it on Close. It returns an error if no codec fits T.
func NewReceiver[T any](t MsgReceiver, opts ...Option) (*Receiver[T], error) {
	cfg := NewConfig(opts...)
	c, err := codecFor[T](cfg)
	if err != nil {
		return nil, err
	}
	r := &Receiver[T]{t: t, codec: c, mu: newCtxLock(), closed: make(chan struct{})}
	if handshakeOn(cfg, t) {
		r.hello = helloFor[T](c.Name())
		if l, ok := t.(MsgSizeLimiter); ok {
			// Nothing longer than a hello until the peer's hello came.
			l.LimitMsgSize(maxHelloSize)
			r.limiter = l
		}
	}
	r.deliverFn = r.deliver
	r.deliverFilesFn = r.deliverFiles
	r.ahead.wake = &r.wake
	return r, nil
}

// Recv waits for the next value and returns it. It returns io.EOF once
// every sender has closed and the last value has been received, ctx.Err() if
// ctx ends first (having taken nothing off the transport), an error wrapping
// os.ErrClosed after Close, and an error wrapping ErrDecode for a message the
// codec cannot decode (that message is consumed; the next Recv goes on with
// the next one).
func (r *Receiver[T]) Recv(ctx context.Context) (T, error) {
	v, _, err := r.RecvTag(ctx)
	return v, err
}

// RecvTag is Recv that also returns the message's tag: its priority or
// message type on transports that have one.
func (r *Receiver[T]) RecvTag(ctx context.Context) (T, uint32, error) {
	return r.recvTag(ctx, nil)
}

// recvTag is RecvTag for a caller that may be the Chan pump self.
func (r *Receiver[T]) recvTag(ctx context.Context, self *pump) (T, uint32, error) {
	var zero T
	if err := r.begin(ctx, self); err != nil {
		return zero, 0, err
	}
	defer r.mu.unlock()
	if it, ok := r.ahead.pop(); ok {
		return it.v, it.tag, nil
	}
	r.dst = &r.val
	err := r.recvMsg(ctx)
	v, tag := r.val, r.tag
	r.val, r.dst = zero, nil
	if err != nil {
		return zero, 0, r.wrap(err)
	}
	return v, tag, nil
}

// RecvInto is Recv that decodes into *dst, reusing what *dst holds (the
// capacity of a []byte, for example) so that a loop receiving into the same
// variable need not allocate.
func (r *Receiver[T]) RecvInto(ctx context.Context, dst *T) error {
	if err := r.begin(ctx, nil); err != nil {
		return err
	}
	defer r.mu.unlock()
	if it, ok := r.ahead.pop(); ok {
		*dst = it.v
		return nil
	}
	r.dst = dst
	err := r.recvMsg(ctx)
	r.dst = nil
	return r.wrap(err)
}

// TryRecv returns the next value if one is available without waiting, and
// otherwise ErrWouldBlock (also when another goroutine is receiving).
func (r *Receiver[T]) TryRecv() (T, error) {
	v, _, err := r.tryRecv()
	return v, err
}

// tryRecv is TryRecv that also says whether it gave up because another
// goroutine holds the receive lock.
func (r *Receiver[T]) tryRecv() (v T, busy bool, err error) {
	var zero T
	if !r.mu.tryLock() {
		if r.isClosed() {
			return zero, false, r.wrap(os.ErrClosed)
		}
		return zero, true, ErrWouldBlock
	}
	defer r.mu.unlock()
	if r.isClosed() {
		return zero, false, r.wrap(os.ErrClosed)
	}
	r.ahead.settle(nil)
	if it, ok := r.ahead.pop(); ok {
		return it.v, false, nil
	}
	r.dst = &r.val
	err = r.sticky
	for err == nil || errors.Is(err, errGreeted) {
		if err = r.t.TryRecvMsg(r.deliverFn); !errors.Is(err, errGreeted) {
			err = r.refusedBeforeHello(err)
			break
		}
	}
	v = r.val
	r.val, r.dst = zero, nil
	if err != nil && err != ErrWouldBlock && errors.Is(err, ErrWouldBlock) {
		// Waiting for something the descriptor does not show (memory):
		// busy, so that a Select polls rather than spins.
		return zero, true, ErrWouldBlock
	}
	if err != nil {
		return zero, false, r.wrap(err)
	}
	return v, false, nil
}

// begin checks ctx, takes the receive lock, and waits for any Chan pump
// whose context has ended to hand back what it read ahead.
func (r *Receiver[T]) begin(ctx context.Context, self *pump) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.mu.lock(ctx, r.closed); err != nil {
		return r.wrap(err)
	}
	if r.isClosed() {
		r.mu.unlock()
		return r.wrap(os.ErrClosed)
	}
	r.ahead.settle(self)
	return nil
}

// recvMsg receives one message into r.dst, passing over hellos; the
// caller holds mu.
func (r *Receiver[T]) recvMsg(ctx context.Context) error {
	if r.sticky != nil {
		return r.sticky
	}
	for {
		if err := r.t.RecvMsg(ctx, r.deliverFn); !errors.Is(err, errGreeted) {
			return r.refusedBeforeHello(err)
		}
	}
}

// refusedBeforeHello turns the transport's refusal of a message longer than
// any hello, while the peer's hello is awaited, into a handshake error that
// stays; other errors are returned as they are. The caller holds mu.
func (r *Receiver[T]) refusedBeforeHello(err error) error {
	if r.limiter != nil && !r.greeted && r.sticky == nil && errors.Is(err, ErrFrameTooLarge) {
		r.sticky = fmt.Errorf("%w: the first message is longer than any hello (%w): the peer does not speak the handshake (a raw peer needs WithHandshake(false) on this side)", ErrHandshake, err)
		return r.sticky
	}
	return err
}

func (r *Receiver[T]) deliver(tag uint32, payload []byte) error {
	if r.hello != nil {
		if tag == HandshakeTag {
			if err := checkHello(payload, r.hello); err != nil {
				r.sticky = err
				return err
			}
			r.greeted = true
			if r.limiter != nil {
				r.limiter.LimitMsgSize(0)
			}
			return errGreeted
		}
		if !r.greeted {
			r.sticky = fmt.Errorf("%w: a message came before any hello: the peer does not speak the handshake (a raw peer needs WithHandshake(false) on this side)", ErrHandshake)
			return r.sticky
		}
	}
	r.tag = tag
	if err := r.codec.Decode(payload, r.dst); err != nil {
		return fmt.Errorf("decode %d-byte message: %w", len(payload), err)
	}
	return nil
}

// Close closes the transport. Blocked receives, Selects and Chan pumps end
// with an error wrapping os.ErrClosed. Close is idempotent: later calls
// return the first call's result.
func (r *Receiver[T]) Close() error {
	r.closeOnce.Do(func() {
		r.peers.stop()
		close(r.closed)
		r.wake.close()
		r.closeErr = WrapError("close", r.t.String(), r.t.Close())
	})
	return r.closeErr
}

// File returns a duplicate of the descriptor behind the Receiver, to hand to
// another process. It wraps ErrNotSupported for transports without one.
func (r *Receiver[T]) File() (*os.File, error) {
	if f, ok := r.t.(Filer); ok {
		file, err := f.File()
		return file, r.wrap(err)
	}
	return nil, r.wrap(ErrNotSupported)
}

// WatchPeer watches the process pid, the peer that sends to this Receiver:
// once it exits, receives return every value it sent that is still queued
// and then, where they would wait, an error wrapping ErrPeerGone (a
// [*PeerExitError]) instead of waiting for ever. It matters on transports
// with no kernel end of stream (message queues, datagrams, shared memory);
// streams end by themselves. Several peers may be watched; the watch ends
// with Close, and costs no goroutine of its own (one goroutine watches
// every process the program watches). It returns an error wrapping
// ErrNotSupported if the transport cannot be woken from outside, and the
// pidfd_open error (ESRCH) for a process that does not exist.
//
// WatchPeer is safe for concurrent use.
func (r *Receiver[T]) WatchPeer(pid int) error {
	return WrapError("watch peer", r.t.String(), r.peers.watch(r.t, pid))
}

// Transport returns the transport the Receiver reads from.
func (r *Receiver[T]) Transport() MsgReceiver { return r.t }

// String describes the Receiver's endpoint.
func (r *Receiver[T]) String() string { return r.t.String() }

func (r *Receiver[T]) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

func (r *Receiver[T]) wrap(err error) error { return WrapError("recv", r.t.String(), err) }

// wakeEvent is a lazily created poller.Event that is set while the
// Receiver has something for a Select that its transport's descriptor does
// not show: it is closed, or values were handed back by a Chan pump. Selects
// hold references; the eventfd is released when the last one lets go after
// Close.
type wakeEvent struct {
	mu     sync.Mutex
	ev     *poller.Event
	refs   int
	closed bool
}

// acquire returns the event's descriptor for a Select, or ok == false once
// the Receiver is closed.
func (w *wakeEvent) acquire() (fd int, ok bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return -1, false, nil
	}
	if w.ev == nil {
		if w.ev, err = poller.NewEvent(); err != nil {
			return -1, false, err
		}
	}
	w.refs++
	return w.ev.FD(), true, nil
}

func (w *wakeEvent) release() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.refs--
	if w.refs == 0 && w.closed && w.ev != nil {
		w.ev.Close()
		w.ev = nil
	}
}

func (w *wakeEvent) set(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ev == nil || w.closed {
		return
	}
	if on {
		w.ev.Set()
	} else {
		w.ev.Clear()
	}
}

func (w *wakeEvent) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.ev == nil {
		return
	}
	if w.refs == 0 {
		w.ev.Close()
		w.ev = nil
		return
	}
	w.ev.Set()
}
