package ipcchan

import (
	"context"
	"errors"
	"io"

	"github.com/ipcchan/go/codec"
)

var (
	// ErrWouldBlock is returned by TrySend and TryRecv when the call would
	// have to wait.
	ErrWouldBlock = errors.New("ipcchan: operation would block")

	// ErrFrameTooLarge is wrapped by the error a receiver returns for a
	// message longer than its limit (see [WithMaxMessageSize]). It is the
	// same value as codec.ErrFrameTooLarge.
	ErrFrameTooLarge = codec.ErrFrameTooLarge

	// ErrMessageTooLarge is wrapped by the error a sender returns, before
	// sending anything, for a message the transport cannot carry whole.
	ErrMessageTooLarge = errors.New("ipcchan: message too large for the transport")

	// ErrPeerGone is wrapped by errors that report that the process at the
	// other end has gone away: a write with no reader left, or a watched
	// peer process that exited.
	ErrPeerGone = errors.New("ipcchan: peer gone")

	// ErrDecode is wrapped by the error Recv returns for a message the
	// codec cannot decode. The message is consumed; the next Recv reads
	// the next one. It is the same value as codec.ErrDecode.
	ErrDecode = codec.ErrDecode
)

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
//
// Transports may use it to report their own errors.
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
