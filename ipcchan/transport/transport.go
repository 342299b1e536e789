package transport

import (
	"context"
	"fmt"
	"os"
	"syscall"
)

// HandshakeTag is the tag of the hello frame that opens a byte stream (see
// PROTOCOL.md §3); values cannot use it.
const HandshakeTag = 0x7FFF_FFFF

// MsgSender is the sending half of a message transport: the interface an
// endpoint implements so that an ipcchan.Sender can use it.
//
// A Sender calls SendMsg and TrySendMsg from one goroutine at a time; Close
// may be called concurrently with them and must make them return an error
// wrapping os.ErrClosed.
type MsgSender interface {
	// SendMsg sends msg as one message carrying tag, waiting while the
	// transport is full. It returns ctx.Err() if ctx ends first, in which
	// case the message has been sent whole or not at all. msg is neither
	// modified nor retained after SendMsg returns: it may be the caller's
	// own value (codec.Viewer), even a string's read-only bytes.
	SendMsg(ctx context.Context, tag uint32, msg []byte) error

	// TrySendMsg is SendMsg without waiting: it returns ErrWouldBlock
	// when the message cannot be accepted now.
	TrySendMsg(tag uint32, msg []byte) error

	// MaxMsgSize returns the largest msg the transport carries.
	MaxMsgSize() int

	// Close flushes what the transport still holds (within a bounded time)
	// and releases it; on a transport without a kernel end of stream it
	// tells the receiver this sender is done, after every message a
	// SendMsg that returned nil committed. A SendMsg blocked when Close
	// begins returns an error wrapping os.ErrClosed having sent nothing.
	// Close is idempotent.
	Close() error

	// String describes the endpoint in errors.
	String() string
}

// MsgReceiver is the receiving half of a message transport.
//
// A Receiver calls RecvMsg and TryRecvMsg from one goroutine at a time;
// Close may be called concurrently with them and must make them return an
// error wrapping os.ErrClosed.
type MsgReceiver interface {
	// RecvMsg waits for the next message and calls deliver with its tag
	// and payload, which are valid only during the call. The message is
	// consumed whether or not deliver returns an error, and RecvMsg
	// returns deliver's error. It returns io.EOF once every sender has
	// finished and no message is left, ctx.Err() if ctx ends first (having
	// consumed nothing), and an error wrapping ErrFrameTooLarge for a
	// message over the limit.
	RecvMsg(ctx context.Context, deliver func(tag uint32, payload []byte) error) error

	// TryRecvMsg is RecvMsg without waiting: it returns ErrWouldBlock when
	// no whole message is available now.
	TryRecvMsg(deliver func(tag uint32, payload []byte) error) error

	// Close releases the transport. It is idempotent.
	Close() error

	// String describes the endpoint in errors.
	String() string
}

// RoomReceiver is implemented by transports that can read a large
// message's payload straight into memory the caller offers (a byte
// stream), so that it is not copied again from the transport's buffer.
// Receiver.RecvInto uses it with the Room of its destination
// (codec.Viewer).
type RoomReceiver interface {
	// RecvMsgRoom is RecvMsg with room offered for the payload. The
	// transport may read a message that fits in room into it, and then
	// hands deliver room[:len(payload)]; any other message is delivered as
	// RecvMsg delivers it. It keeps RecvMsg's rules, also when ctx ends
	// part-way through a payload: the bytes read into room are then kept
	// by the transport for the next receive. room's contents may have
	// changed whatever RecvMsgRoom returns, and room is not retained after
	// it returns.
	RecvMsgRoom(ctx context.Context, room []byte, deliver func(tag uint32, payload []byte) error) error
}

// Pollable is implemented by transports whose readiness a Select can wait
// on: the descriptor behind the RawConn is readable (or hung up) whenever
// a receiver's TryRecvMsg may make progress, writable (or in error)
// whenever a sender's TrySendMsg may. A transport without one is polled.
type Pollable interface {
	SyscallConn() (syscall.RawConn, error)
}

// Doorbell is implemented by a Pollable transport whose descriptor becomes
// ready only for a waiter that announced itself: the doorbell of a
// shared-memory ring, which the other side rings only while the ring's
// parked flag is set. A doorbell is rung by making it readable, for a
// sender as for a receiver (an eventfd is always writable): a Select
// watches it for reading in either case. A Select calls Arm after adding
// the descriptor to its set and before waiting on it. Arm announces the waiter (the flag
// stays set until the other side rings) and reports whether the transport
// may already make progress, in which case the Select tries again instead
// of waiting. Arm is safe for concurrent use with the transport's calls.
type Doorbell interface {
	Pollable
	Arm() (ready bool)
}

// Filer is implemented by transports backed by a descriptor that can be
// handed to another process. File returns a new *os.File for a duplicate of
// that descriptor; the caller owns it.
type Filer interface {
	File() (*os.File, error)
}

// Flusher is implemented by transports that may hold sent messages in user
// space. Flush waits until they have been handed to the kernel.
type Flusher interface {
	Flush(ctx context.Context) error
}

// Failer is implemented by transports whose waits can be ended from
// outside: Fail makes every call that would wait, now or later, return err,
// once what is already queued has been delivered. WatchPeer uses it.
type Failer interface {
	Fail(err error)
}

// FileMsgSender is implemented by transports that can attach open
// descriptors to a message (Unix sockets, with SCM_RIGHTS).
type FileMsgSender interface {
	// SendMsgFiles is SendMsg with the descriptors fds attached. The
	// receiving process gets duplicates; the caller keeps fds.
	SendMsgFiles(ctx context.Context, tag uint32, msg []byte, fds []int) error
}

// FileMsgReceiver is implemented by transports that receive descriptors
// attached to messages.
type FileMsgReceiver interface {
	// RecvMsgFiles is RecvMsg that also hands deliver the descriptors that
	// came with the message; deliver owns them. (Plain RecvMsg closes the
	// descriptors of a message that carried some.)
	RecvMsgFiles(ctx context.Context, deliver func(tag uint32, payload []byte, fds []int) error) error
}

// InPlaceSender is implemented by a transport whose messages can be
// written where the receiver reads them: the shared-memory ring.
// ipcchan.Sender.SendRaw uses it to write a message once (zero-copy), and
// Send, SendTag and TrySend to encode a value straight into its room when
// the codec knows the encoded length beforehand (codec.Sizer,
// codec.SizedCodec). The calls follow MsgSender's rules: one goroutine at
// a time, Close concurrently.
type InPlaceSender interface {
	// SendInPlace waits for room for a message of n bytes, calls fill
	// with that room, and sends the first m bytes fill says it wrote
	// (0 ≤ m ≤ n) as one message carrying tag. If fill returns an error,
	// or an m out of range, nothing is sent and SendInPlace returns the
	// error. It waits as SendMsg does; fill must not keep the slice.
	SendInPlace(ctx context.Context, tag uint32, n int, fill func(room []byte) (m int, err error)) error

	// TrySendInPlace is SendInPlace without waiting: it returns
	// ErrWouldBlock, without calling fill, when there is no room for n
	// bytes now.
	TrySendInPlace(tag uint32, n int, fill func(room []byte) (m int, err error)) error
}

// CheckFilled returns an error if m, the count a fill function returned
// for room of n bytes, is outside 0..n.
func CheckFilled(m, n int) error {
	if m < 0 || m > n {
		return fmt.Errorf("fill wrote %d bytes of room for %d", m, n)
	}
	return nil
}

// HandshakeDefaulter is implemented by transports that hold a handshake
// unless the handshake is turned off: the byte streams.
type HandshakeDefaulter interface {
	HandshakeByDefault() bool
}

// MsgSizeLimiter is implemented by transports that can hold incoming
// messages to a smaller size than their configured maximum. A Receiver with
// the handshake on calls LimitMsgSize with the longest hello before its
// first receive, so that a peer that has not said hello cannot make it
// allocate for a large message, and with 0 — the configured maximum again —
// once the hello has arrived. It is called with the receive lock held, never
// concurrently with a receive.
type MsgSizeLimiter interface {
	LimitMsgSize(n int)
}
