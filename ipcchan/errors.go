package ipcchan

import "github.com/ipcchan/go/ipcchan/transport"

// The errors of typed channels and their endpoints. Each is the value of
// the same name in package transport, where endpoints report them;
// errors.Is finds them through any wrapping.
var (
	// ErrWouldBlock is returned by TrySend and TryRecv when the call would
	// have to wait.
	ErrWouldBlock = transport.ErrWouldBlock

	// ErrFrameTooLarge is wrapped by the error a receiver returns for a
	// message longer than its limit (see [WithMaxMessageSize]). It is the
	// same value as codec.ErrFrameTooLarge.
	ErrFrameTooLarge = transport.ErrFrameTooLarge

	// ErrMessageTooLarge is wrapped by the error a sender returns, before
	// sending anything, for a message the transport cannot carry whole.
	ErrMessageTooLarge = transport.ErrMessageTooLarge

	// ErrPeerGone is wrapped by errors that report that the process at the
	// other end has gone away: a write with no reader left, or a watched
	// peer process that exited.
	ErrPeerGone = transport.ErrPeerGone

	// ErrDecode is wrapped by the error Recv returns for a message the
	// codec cannot decode. The message is consumed; the next Recv reads
	// the next one. It is the same value as codec.ErrDecode.
	ErrDecode = transport.ErrDecode

	// ErrNotSupported is wrapped by errors for operations an endpoint does
	// not offer (SendFiles on a pipe, say).
	ErrNotSupported = transport.ErrNotSupported

	// ErrTooManyFiles is wrapped by the error for more files than one
	// message can carry (the kernel's limit, SCM_MAX_FD, is 253).
	ErrTooManyFiles = transport.ErrTooManyFiles

	// ErrOption is wrapped by the error of a constructor given an option
	// that does not apply to it (it names the option and why), or an
	// option value out of its range.
	ErrOption = transport.ErrOption

	// ErrReservedTag is wrapped by the error for a tag that a transport
	// cannot carry or keeps for itself — on every channel whose hello is
	// on, transport.HandshakeTag, the hello's — given to SendTag (nothing
	// is sent) or with WithTag (the constructor refuses it, wrapping
	// ErrOption too).
	ErrReservedTag = transport.ErrReservedTag

	// ErrLagged is wrapped by the error a subscriber of a lossy broadcast
	// (endpoints.Broadcast with WithLossy) gets when it fell behind and
	// lost values: a *LaggedError, which says how many. The Receiver goes
	// on: the next receive returns the oldest value still held.
	ErrLagged = transport.ErrLagged
)

// LaggedError is the error of a receive on a lossy broadcast's subscriber
// that fell behind: Missed values, exactly, were overwritten before it
// read them. errors.Is(err, ErrLagged) is true for it; find it with
// errors.As.
type LaggedError = transport.LaggedError

// OpError reports a failed operation on an endpoint: the operation ("send",
// "recv", "open", ...), the endpoint, and the cause. It is returned wrapped
// or bare; use errors.As to find it and errors.Is to test its cause
// (os.ErrClosed, ErrPeerGone, ErrFrameTooLarge, a syscall errno, ...).
type OpError = transport.OpError

// PeerCred is the identity of the process at the other end of a Unix
// socket, as the kernel recorded it (SO_PEERCRED, or the credentials on a
// datagram).
type PeerCred = transport.PeerCred

// wrapError is transport.WrapError.
func wrapError(op, endpoint string, err error) error { return transport.WrapError(op, endpoint, err) }
