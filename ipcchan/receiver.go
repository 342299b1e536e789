package ipcchan

import (
	"context"
	"errors"
	"fmt"
	"github.com/ipcchan/go/ipcchan/transport"
	"os"
	"sync"
	"sync/atomic"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/internal/ctxlock"
)

// Receiver is the receiving end of a typed channel that crosses a process
// boundary. It is safe for concurrent use: each message goes to exactly one
// caller.
type Receiver[T any] struct {
	t     transport.MsgReceiver
	codec codec.Codec[T]

	mu        ctxlock.Mutex // serializes receives; guards the fields below
	dst       *T
	raw       func(uint32, []byte) error // RecvRaw's read, instead of decoding into dst
	tag       uint32
	val       T
	deliverFn func(uint32, []byte) error

	// RecvInto's destination memory, offered to a transport that can read
	// a payload straight into it (see recvMsg); nil otherwise.
	room     []byte
	viewer   codec.Viewer[T]        // the codec, if it decodes into a value's own memory
	roomRecv transport.RoomReceiver // the transport, if it reads into offered memory

	files          []*os.File // received with the current message (RecvFiles)
	deliverFilesFn func(uint32, []byte, []int) error

	ahead aheadQueue[T] // values read ahead by Chan, handed to the next receive

	closeOnce  sync.Once
	closed     chan struct{}
	closedFlag atomic.Bool // closed is closed: read on every receive
	closeErr   error

	selects selectWaiters // Selects waiting on this Receiver, told of every change

	chanErr atomic.Pointer[error]

	peers peerWatches

	// The handshake; guarded by mu.
	hello   []byte                   // ours, nil without a handshake
	greeted bool                     // a valid hello has arrived
	sticky  error                    // a refused handshake: every receive returns it
	limiter transport.MsgSizeLimiter // the transport, limited to a hello's size until greeted
}

// NewReceiver returns a Receiver that reads messages from t, the transport
// of an endpoint (see package transport), and decodes them with the
// configured codec (codec.Default[T] if none). The Receiver owns t and
// closes it on Close. It honours WithCodec, WithMaxMessageSize,
// WithHandshake and WithForeignPeer, and returns an error wrapping
// ErrOption for any other option, and an error if no codec fits T or t is
// nil.
func NewReceiver[T any](t transport.MsgReceiver, opts ...Option) (*Receiver[T], error) {
	if t == nil {
		return nil, &OpError{Op: "open", Err: errNilTransport}
	}
	cfg, err := transport.NewConfig("a Receiver", transport.ReceiverOptions, opts)
	if err != nil {
		return nil, wrapError("open", t.String(), err)
	}
	c, err := codecFor[T](cfg)
	if err != nil {
		return nil, wrapError("open", t.String(), err)
	}
	r := &Receiver[T]{t: t, codec: c, closed: make(chan struct{})}
	if handshakeOn(cfg, t) {
		r.hello = helloFor[T](c.Name())
		if err := helloFits(len(r.hello), cfg.MaxMessageSize(), 0); err != nil {
			return nil, wrapError("open", t.String(), err)
		}
		if l, ok := t.(transport.MsgSizeLimiter); ok {
			// Nothing longer than a hello until the peer's hello came.
			l.LimitMsgSize(maxHelloSize)
			r.limiter = l
		}
	}
	r.deliverFn = r.deliver
	if rr, ok := t.(transport.RoomReceiver); ok {
		if v, ok := c.(codec.Viewer[T]); ok {
			r.viewer, r.roomRecv = v, rr
		}
	}
	r.deliverFilesFn = r.deliverFiles
	r.ahead.changed = r.selects.changed
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
	if err := r.misuse("recv", ctx); err != nil {
		var zero T
		return zero, 0, err
	}
	return r.recvTag(ctx, nil)
}

// recvTag is RecvTag for a caller that may be the Chan pump self, which is
// marked as holding the value before the receive lock is let go.
func (r *Receiver[T]) recvTag(ctx context.Context, self *pump) (T, uint32, error) {
	var zero T
	if err := r.begin(ctx, self); err != nil {
		return zero, 0, err
	}
	defer r.endRecv()
	it, ok := r.ahead.pop()
	if !ok {
		r.dst = &r.val
		err := r.recvMsg(ctx)
		it = tagged[T]{r.val, r.tag}
		r.val, r.dst = zero, nil
		if err != nil {
			return zero, 0, r.wrap(err)
		}
	}
	if self != nil {
		r.ahead.hold(self)
	}
	return it.v, it.tag, nil
}

// RecvInto is Recv that decodes into *dst, reusing what *dst holds (the
// capacity of a []byte, for example) so that a loop receiving into the same
// variable need not allocate.
//
// On a byte stream, a large message for a []byte (codec.Viewer) that fits
// in *dst's capacity is read from the kernel straight into *dst's memory,
// with no copy. That memory may therefore change even when RecvInto
// returns an error (*dst itself, the slice, changes only on success); a
// cancelled RecvInto still takes nothing off the stream.
//
// A nil dst is refused with an error, and nothing is received.
func (r *Receiver[T]) RecvInto(ctx context.Context, dst *T) error {
	if err := r.misuse("recv", ctx); err != nil {
		return err
	}
	if dst == nil {
		return r.wrap(errors.New("RecvInto with a nil destination: pass a pointer to a variable of the element type"))
	}
	if err := r.begin(ctx, nil); err != nil {
		return err
	}
	defer r.endRecv()
	if it, ok := r.ahead.pop(); ok {
		*dst = it.v
		return nil
	}
	r.dst = dst
	if r.viewer != nil {
		r.room = r.viewer.Room(dst)
	}
	err := r.recvMsg(ctx)
	r.dst, r.room = nil, nil
	return r.wrap(err)
}

// TryRecv returns the next value if one is available without waiting, and
// otherwise ErrWouldBlock (also when another goroutine is receiving).
func (r *Receiver[T]) TryRecv() (T, error) {
	v, _, err := r.tryRecv()
	return v, err
}

// tryRecv is TryRecv that also says, with ErrWouldBlock, whether the
// transport waits for something its descriptor does not show (a listener's
// memory), so that a Select polls it rather than wait on the descriptor.
func (r *Receiver[T]) tryRecv() (v T, poll bool, err error) {
	var zero T
	if err := r.misuse("recv", context.Background()); err != nil {
		return zero, false, err
	}
	if !r.mu.TryLock() {
		if r.isClosed() {
			return zero, false, r.wrap(os.ErrClosed)
		}
		return zero, false, ErrWouldBlock
	}
	defer func() {
		// Finding nothing changes nothing a Select could want.
		r.mu.Unlock()
		if err != ErrWouldBlock {
			r.selects.changed()
		}
	}()
	if r.isClosed() {
		return zero, false, r.wrap(os.ErrClosed)
	}
	r.ahead.reclaim(nil)
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
		// a Select polls rather than spins.
		return zero, true, ErrWouldBlock
	}
	if err != nil {
		return zero, false, r.wrap(err)
	}
	return v, false, nil
}

// endRecv lets go of the receive lock after a receive, and tells waiting
// Selects that the Receiver's state may have changed: the receive may have
// left whole messages in the transport's buffer, or reached the end of
// stream, neither of which the descriptor shows.
func (r *Receiver[T]) endRecv() {
	r.mu.Unlock()
	r.selects.changed()
}

// begin checks ctx, takes the receive lock, and has every Chan pump other
// than self hand back the value it holds, so that the receive takes values
// in the order they were read.
func (r *Receiver[T]) begin(ctx context.Context, self *pump) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.mu.Lock(ctx, r.closed); err != nil {
		return r.wrap(err)
	}
	if r.isClosed() {
		r.mu.Unlock()
		return r.wrap(os.ErrClosed)
	}
	r.ahead.reclaim(self)
	return nil
}

// recvMsg receives one message into r.dst, passing over hellos; the
// caller holds mu.
func (r *Receiver[T]) recvMsg(ctx context.Context) error {
	if r.sticky != nil {
		return r.sticky
	}
	for {
		var err error
		if len(r.room) > 0 {
			err = r.roomRecv.RecvMsgRoom(ctx, r.room, r.deliverFn)
		} else {
			err = r.t.RecvMsg(ctx, r.deliverFn)
		}
		if !errors.Is(err, errGreeted) {
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
		if tag == handshakeTag {
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
	if r.raw != nil {
		return r.raw(tag, payload)
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
	if err := r.misuse("close", context.Background()); err != nil {
		return err
	}
	r.closeOnce.Do(func() {
		r.peers.stop()
		r.closedFlag.Store(true)
		close(r.closed)
		r.selects.changed()
		r.closeErr = wrapError("close", r.t.String(), r.t.Close())
		r.selects.dropWaitSet()
	})
	return r.closeErr
}

// File returns a duplicate of the descriptor behind the Receiver, to hand to
// another process. It wraps ErrNotSupported for transports without one.
func (r *Receiver[T]) File() (*os.File, error) {
	if err := r.misuse("file", context.Background()); err != nil {
		return nil, err
	}
	if f, ok := r.t.(transport.Filer); ok {
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
	if err := r.misuse("watch peer", context.Background()); err != nil {
		return err
	}
	return wrapError("watch peer", r.t.String(), r.peers.watch(r.t, pid))
}

// Transport returns the transport the Receiver reads from (nil for a zero
// Receiver).
func (r *Receiver[T]) Transport() transport.MsgReceiver {
	if r == nil {
		return nil
	}
	return r.t
}

// String describes the Receiver's endpoint.
func (r *Receiver[T]) String() string {
	if r == nil || r.t == nil {
		return "zero Receiver"
	}
	return r.t.String()
}

func (r *Receiver[T]) isClosed() bool { return r.closedFlag.Load() }

// wrap wraps err for a receive; nil stays nil without asking the transport
// its name.
func (r *Receiver[T]) wrap(err error) error {
	if err == nil {
		return nil
	}
	return wrapError("recv", r.t.String(), err)
}
