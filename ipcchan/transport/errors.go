package transport

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipcchan/go/codec"
)

// The errors a transport reports, by meaning. ipcchan re-exports each under
// the same name; errors.Is finds them through any wrapping.
var (
	// ErrWouldBlock is what TrySendMsg and TryRecvMsg return when they
	// would have to wait.
	ErrWouldBlock = errors.New("ipcchan: operation would block")

	// ErrFrameTooLarge is wrapped by the error for a message longer than
	// the receiver's limit. It is codec.ErrFrameTooLarge.
	ErrFrameTooLarge = codec.ErrFrameTooLarge

	// ErrMessageTooLarge is wrapped by the error a sender returns, before
	// sending anything, for a message the transport cannot carry whole.
	ErrMessageTooLarge = errors.New("ipcchan: message too large for the transport")

	// ErrPeerGone is wrapped by errors that report that the process at the
	// other end has gone away.
	ErrPeerGone = errors.New("ipcchan: peer gone")

	// ErrDecode is wrapped by the error for a message the codec cannot
	// decode. It is codec.ErrDecode.
	ErrDecode = codec.ErrDecode

	// ErrNotSupported is wrapped by errors for operations a transport does
	// not offer.
	ErrNotSupported = errors.New("ipcchan: operation not supported by this transport")

	// ErrTooManyFiles is wrapped by the error for more files than one
	// message can carry (the kernel's limit, SCM_MAX_FD, is 253).
	ErrTooManyFiles = errors.New("ipcchan: too many files for one message")

	// ErrOption is wrapped by the error of a constructor given an option
	// that does not apply to it, or an option value out of its range.
	ErrOption = errors.New("ipcchan: option refused")

	// ErrReservedTag is wrapped by the error for a tag a transport cannot
	// carry or keeps for itself: given to SendTag (nothing is sent), or
	// with WithTag (the constructor refuses it, wrapping ErrOption too).
	ErrReservedTag = errors.New("reserved tag")

	// ErrLagged is wrapped by the error a lossy broadcast's subscriber
	// gets when it fell behind and lost values: a *LaggedError.
	ErrLagged = errors.New("ipcchan: subscriber lagged behind")
)

// LaggedError is the error of a receive on a lossy broadcast's subscriber
// that fell behind: the publishers overwrote Missed values it had not
// read. The receive after it returns the oldest value still held.
// errors.Is(err, ErrLagged) is true for it.
type LaggedError struct {
	Missed uint64 // the values lost, exactly
}

// Error says how many values were lost.
func (e *LaggedError) Error() string {
	return fmt.Sprintf("ipcchan: subscriber lagged behind: %d values lost (a lossy broadcast overwrote them; receive on to go on with the oldest value held)", e.Missed)
}

// Is reports whether target is ErrLagged.
func (e *LaggedError) Is(target error) bool { return target == ErrLagged }

// OpError reports a failed operation on an endpoint.
//
// It is returned wrapped or bare; use errors.As to find it and errors.Is to
// test its cause (os.ErrClosed, ErrPeerGone, ErrFrameTooLarge, a syscall
// errno, ...).
type OpError struct {
	// Op is the operation: "send", "recv", "open", "close", ...
	Op string
	// Endpoint describes the endpoint, for example "pipe (read end)" or
	// "fifo /run/app/jobs".
	Endpoint string
	// Err is the cause.
	Err error
}

func (e *OpError) Error() string {
	if e == nil {
		return "<nil>"
	}
	s := "ipcchan: " + e.Op
	if e.Endpoint != "" {
		s += " " + e.Endpoint
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *OpError) Unwrap() error {
	if e == nil {
		return nil
	}
	return e.Err
}

// WrapError wraps err in an *OpError for op on endpoint, except for the
// errors that are returned bare by convention: nil, io.EOF, ErrWouldBlock,
// context.Canceled and context.DeadlineExceeded, and errors that already
// are an *OpError.
func WrapError(op, endpoint string, err error) error {
	switch err {
	case nil, io.EOF, ErrWouldBlock, context.Canceled, context.DeadlineExceeded:
		return err
	}
	var oe *OpError
	if errors.As(err, &oe) {
		return err
	}
	return &OpError{Op: op, Endpoint: endpoint, Err: err}
}

// PeerCred is the identity of the process at the other end of a Unix
// socket, as the kernel recorded it (SO_PEERCRED, or SCM_CREDENTIALS on a
// datagram).
type PeerCred struct {
	PID, UID, GID int
}
