package ipcchan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/ipcchan/go/ipcchan/transport"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/internal/ctxlock"
)

// Sender is the sending end of a typed channel that crosses a process
// boundary. It is safe for concurrent use: messages from concurrent Sends
// never interleave.
type Sender[T any] struct {
	t     transport.MsgSender
	codec codec.Codec[T]
	tag   uint32
	max   int

	mu      ctxlock.Mutex // serializes sends; guards buf, greeted and pending
	buf     []byte
	hello   []byte // the handshake's first frame, nil without a handshake
	greeted bool   // the hello has been sent

	// Encoding in place: with a transport that writes messages where the
	// receiver reads them and a codec that knows a value's encoded length,
	// a value is encoded straight into the room the transport reserves.
	inPlace transport.InPlaceSender // nil: encode into buf, then send
	sizer   codec.Sizer[T]          // nil: fixed is the size
	fixed   int                     // the codec's codec.SizedCodec size
	pending T                       // the value fillFn encodes
	fillFn  func([]byte) (int, error)

	// A codec whose encoding of a value is the value's own bytes hands
	// them to the transport as they are (no copy into buf).
	viewer codec.Viewer[T] // nil: encode into buf

	closeOnce  sync.Once
	closed     chan struct{}
	closedFlag atomic.Bool // closed is closed: read on every send
	closeErr   error

	peers   peerWatches
	selects selectWaiters // Selects waiting to send, told when the lock is let go and at Close
}

// NewSender returns a Sender that encodes values with the configured codec
// (codec.Default[T] if none) and sends them over t, the transport of an
// endpoint (see package transport). The Sender owns t and closes it on
// Close. It honours WithCodec, WithTag, WithMaxMessageSize, WithHandshake
// and WithForeignPeer, and returns an error wrapping ErrOption for any other
// option, and an error if no codec fits T.
func NewSender[T any](t transport.MsgSender, opts ...Option) (*Sender[T], error) {
	if t == nil {
		return nil, &OpError{Op: "open", Err: errNilTransport}
	}
	cfg, err := transport.NewConfig("a Sender", transport.SenderOptions, opts)
	if err != nil {
		return nil, wrapError("open", t.String(), err)
	}
	c, err := codecFor[T](cfg)
	if err != nil {
		return nil, wrapError("open", t.String(), err)
	}
	max := cfg.MaxMessageSize()
	if tm := t.MaxMsgSize(); tm > 0 && tm < max {
		max = tm
	}
	s := &Sender[T]{t: t, codec: c, tag: cfg.Tag(), max: max, closed: make(chan struct{})}
	if ip, ok := t.(transport.InPlaceSender); ok {
		if sz, ok := c.(codec.Sizer[T]); ok {
			s.inPlace, s.sizer = ip, sz
		} else if sc, ok := c.(codec.SizedCodec); ok {
			s.inPlace, s.fixed = ip, sc.Size()
		}
		s.fillFn = s.fill // bound once: a send allocates nothing
	}
	if v, ok := c.(codec.Viewer[T]); ok {
		s.viewer = v
	}
	if handshakeOn(cfg, t) {
		s.hello = helloFor[T](c.Name())
		if s.tag == handshakeTag {
			return nil, wrapError("open", t.String(), fmt.Errorf("%w: %s(%#x): %w", ErrOption, transport.OptTag, s.tag, errHelloTag))
		}
		if err := helloFits(len(s.hello), cfg.MaxMessageSize(), t.MaxMsgSize()); err != nil {
			return nil, wrapError("open", t.String(), err)
		}
	}
	return s, nil
}

// greet sends the hello before the first message, if the handshake is on;
// the caller holds s.mu. With block false it does not wait.
func (s *Sender[T]) greet(ctx context.Context, block bool) error {
	if s.hello == nil || s.greeted {
		return nil
	}
	var err error
	if block {
		err = s.t.SendMsg(ctx, handshakeTag, s.hello)
	} else {
		err = s.t.TrySendMsg(handshakeTag, s.hello)
	}
	if err == nil {
		s.greeted = true
	}
	return err
}

// Send sends v, waiting while the transport is full. It returns ctx.Err()
// if ctx ends first, in which case v has been sent whole or not at all, and
// never half. An error wrapping os.ErrClosed means the Sender is closed;
// ErrMessageTooLarge that v's encoding exceeds the limit; ErrPeerGone that
// no receiver is left.
//
// On a transport that writes messages where the receiver reads them (a
// shared-memory ring: transport.InPlaceSender) with a codec that knows the
// encoded length beforehand (codec.Sizer, codec.SizedCodec), v is encoded
// straight into the room the transport reserves for it, with no
// intermediate buffer; a value the codec refuses then publishes nothing.
// On other transports, a codec whose encoding is the value's own bytes
// (codec.Viewer: []byte, string) hands those bytes to the transport as
// they are — a byte stream writes them to the kernel with the frame's
// header in one writev — and other codecs encode into the Sender's
// buffer, which is copied.
func (s *Sender[T]) Send(ctx context.Context, v T) error {
	if err := s.misuse("send", ctx); err != nil {
		return err
	}
	return s.send(ctx, s.tag, v, nil, nil)
}

// SendTag is Send with the message's tag given for this message only: a
// priority or a message type on transports that have one, or a sub-channel
// number on byte streams.
func (s *Sender[T]) SendTag(ctx context.Context, tag uint32, v T) error {
	if err := s.misuse("send", ctx); err != nil {
		return err
	}
	return s.send(ctx, tag, v, nil, nil)
}

// send is every blocking send of a value: v encoded, after the hello if it
// is due, with the descriptors fds through fs if fs is not nil.
func (s *Sender[T]) send(ctx context.Context, tag uint32, v T, fs transport.FileMsgSender, fds []int) error {
	if tag == handshakeTag && s.hello != nil {
		return s.wrap(errHelloTag)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	if fs == nil {
		if n, ok := s.sizeInPlace(v); ok {
			return s.sendInPlace(ctx, true, tag, n, v)
		}
	}
	msg, err := s.message(v)
	if err != nil {
		return err
	}
	if err := s.greet(ctx, true); err != nil {
		return s.wrap(err)
	}
	if fs != nil {
		return s.wrap(fs.SendMsgFiles(ctx, tag, msg, fds))
	}
	return s.wrap(s.t.SendMsg(ctx, tag, msg))
}

// lock takes the send lock for a call that may wait, giving up with
// ctx.Err(), or os.ErrClosed once the Sender is closed. The caller lets go
// with unlock.
func (s *Sender[T]) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.mu.Lock(ctx, s.closed); err != nil {
		return s.wrap(err)
	}
	if s.isClosed() {
		s.mu.Unlock()
		return s.wrap(os.ErrClosed)
	}
	return nil
}

// unlock lets go of the send lock and wakes the Selects waiting to send,
// for which the lock was in the way.
func (s *Sender[T]) unlock() {
	s.mu.Unlock()
	s.selects.changed()
}

// TrySend sends v if that can be done without waiting, and otherwise returns
// ErrWouldBlock (also when another goroutine is sending). It encodes in
// place as Send does.
func (s *Sender[T]) TrySend(v T) error {
	if err := s.misuse("send", context.Background()); err != nil {
		return err
	}
	return s.trySend(v)
}

// trySend is TrySend once the call is known to be well-formed.
func (s *Sender[T]) trySend(v T) (err error) {
	if !s.mu.TryLock() {
		if s.isClosed() {
			return s.wrap(os.ErrClosed)
		}
		return ErrWouldBlock
	}
	defer func() {
		// Finding no room changes nothing a Select could want (and a
		// Select's own attempt must not wake it).
		s.mu.Unlock()
		if err != ErrWouldBlock {
			s.selects.changed()
		}
	}()
	if n, ok := s.sizeInPlace(v); ok {
		return s.sendInPlace(context.Background(), false, s.tag, n, v)
	}
	msg, err := s.message(v)
	if err != nil {
		return err
	}
	if err := s.greet(context.Background(), false); err != nil {
		return s.wrap(err)
	}
	return s.wrap(s.t.TrySendMsg(s.tag, msg))
}

// sizeInPlace returns the length of v's encoding, and true, if v is to be
// encoded in place: the transport is an InPlaceSender, the codec knows the
// length without encoding, and the hello, if any, has been sent (so that
// a value the codec refuses sends nothing at all, not even the hello: the
// first message takes the buffered path). The caller holds s.mu.
func (s *Sender[T]) sizeInPlace(v T) (int, bool) {
	switch {
	case s.inPlace == nil, s.hello != nil && !s.greeted:
		return 0, false
	case s.sizer != nil:
		return s.sizer.EncodedSize(v)
	}
	return s.fixed, true
}

// sendInPlace sends v, whose encoding is n bytes, encoding it straight into
// the room the transport reserves (no intermediate buffer); block says
// whether to wait for room. The caller holds s.mu. A value over the limit
// is refused before anything is reserved; if the codec fails, the room is
// abandoned and nothing is sent. (The codec runs once there is room: on a
// full transport, its error comes after the wait, and TrySend returns
// ErrWouldBlock first.) A codec that appends more than its Sizer said is
// sent through the buffer instead.
func (s *Sender[T]) sendInPlace(ctx context.Context, block bool, tag uint32, n int, v T) error {
	if s.isClosed() {
		return s.wrap(os.ErrClosed)
	}
	if n > s.max {
		return s.tooLarge(n)
	}
	s.pending = v
	var err error
	if block {
		err = s.inPlace.SendInPlace(ctx, tag, n, s.fillFn)
	} else {
		err = s.inPlace.TrySendInPlace(tag, n, s.fillFn)
	}
	var zero T
	s.pending = zero // keep nothing of v alive
	if err != errSizeMismatch {
		return s.wrap(err)
	}
	msg, err := s.encode(v)
	if err != nil {
		return err
	}
	if block {
		return s.wrap(s.t.SendMsg(ctx, tag, msg))
	}
	return s.wrap(s.t.TrySendMsg(tag, msg))
}

// errSizeMismatch is fill's error for a codec whose encoding outgrew the
// length its Sizer gave: sendInPlace then sends through the buffer.
var errSizeMismatch = errors.New("the encoding is longer than the codec's size for it")

// fill encodes s.pending into room, the transport's room for its encoded
// length (fillFn, called by the transport with s.mu held).
func (s *Sender[T]) fill(room []byte) (int, error) {
	out, err := s.codec.Append(room[:0], s.pending)
	switch {
	case err != nil:
		return 0, fmt.Errorf("encode: %w", err)
	case len(out) > len(room):
		return 0, errSizeMismatch
	case len(out) > 0 && &out[0] != &room[0]:
		copy(room, out) // a codec that returned bytes of its own
	}
	return len(out), nil
}

// message returns the bytes that carry v: v's own, shared, if the codec
// is a codec.Viewer (transports neither keep nor modify them), else its
// encoding in s.buf. The caller holds s.mu.
func (s *Sender[T]) message(v T) ([]byte, error) {
	if s.viewer == nil {
		return s.encode(v)
	}
	if s.isClosed() {
		return nil, s.wrap(os.ErrClosed)
	}
	msg := s.viewer.View(v)
	if len(msg) > s.max {
		return nil, s.tooLarge(len(msg))
	}
	return msg, nil
}

// encode encodes v into s.buf; the caller holds s.mu.
func (s *Sender[T]) encode(v T) ([]byte, error) {
	if s.isClosed() {
		return nil, s.wrap(os.ErrClosed)
	}
	buf, err := s.codec.Append(s.buf[:0], v)
	if err != nil {
		return nil, s.wrap(fmt.Errorf("encode: %w", err))
	}
	// Keep the buffer for the next message unless one huge value grew it.
	if cap(buf) <= 1<<20 {
		s.buf = buf
	} else {
		s.buf = nil
	}
	if len(buf) > s.max {
		return nil, s.tooLarge(len(buf))
	}
	return buf, nil
}

// tooLarge is the error for a message of n bytes, over the Sender's limit.
func (s *Sender[T]) tooLarge(n int) error {
	return s.wrap(fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, n, s.max))
}

// Flush waits until every message Send has accepted is in the kernel. On
// transports that hold nothing in user space it returns nil at once.
func (s *Sender[T]) Flush(ctx context.Context) error {
	if err := s.misuse("flush", ctx); err != nil {
		return err
	}
	if f, ok := s.t.(transport.Flusher); ok {
		return s.wrap(f.Flush(ctx))
	}
	return nil
}

// Close flushes what the Sender holds (for at most the linger time) and
// closes the transport. Once every sender of a channel has closed, its
// receivers get io.EOF after the last message. Blocked Sends return an error
// wrapping os.ErrClosed. Close is idempotent: later calls return the first
// call's result.
func (s *Sender[T]) Close() error {
	if err := s.misuse("close", context.Background()); err != nil {
		return err
	}
	s.closeOnce.Do(func() {
		s.peers.stop()
		s.closedFlag.Store(true)
		close(s.closed)
		s.closeErr = wrapError("close", s.t.String(), s.t.Close())
		s.selects.changed()
		s.selects.dropWaitSet()
	})
	return s.closeErr
}

// WatchPeer watches the process pid, the peer that receives from this
// Sender: once it exits, a Send that would wait for room returns an error
// wrapping ErrPeerGone (a [*PeerExitError]) instead of waiting for ever.
// See [Receiver.WatchPeer]; the same rules hold.
//
// WatchPeer is safe for concurrent use.
func (s *Sender[T]) WatchPeer(pid int) error {
	if err := s.misuse("watch peer", context.Background()); err != nil {
		return err
	}
	return wrapError("watch peer", s.t.String(), s.peers.watch(s.t, pid))
}

// File returns a duplicate of the descriptor behind the Sender, to hand to
// another process. It wraps ErrNotSupported for transports without one.
func (s *Sender[T]) File() (*os.File, error) {
	if err := s.misuse("file", context.Background()); err != nil {
		return nil, err
	}
	if f, ok := s.t.(transport.Filer); ok {
		file, err := f.File()
		return file, s.wrap(err)
	}
	return nil, s.wrap(ErrNotSupported)
}

// Transport returns the transport the Sender sends over (nil for a zero
// Sender).
func (s *Sender[T]) Transport() transport.MsgSender {
	if s == nil {
		return nil
	}
	return s.t
}

// String describes the Sender's endpoint.
func (s *Sender[T]) String() string {
	if s == nil || s.t == nil {
		return "zero Sender"
	}
	return s.t.String()
}

func (s *Sender[T]) isClosed() bool { return s.closedFlag.Load() }

func (s *Sender[T]) wrap(err error) error { return s.wrapOp("send", err) }

// wrapOp wraps err for the call op; nil stays nil without asking the
// transport its name.
func (s *Sender[T]) wrapOp(op string, err error) error {
	if err == nil {
		return nil
	}
	return wrapError(op, s.t.String(), err)
}
