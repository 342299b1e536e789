package ipcchan

import (
	"context"
	"errors"
)

// Misuse is reported, never a crash: a nil context and the zero value of a
// Sender or Receiver (declared rather than made, or a nil pointer) make
// every call return an *OpError saying what to do instead.

var (
	errNilContext   = errors.New("nil context.Context: pass context.Background() when nothing should cancel the call")
	errZeroSender   = errors.New("a zero Sender: make one with NewSender or an endpoints constructor")
	errZeroReceiver = errors.New("a zero Receiver: make one with NewReceiver or an endpoints constructor")
	errNilTransport = errors.New("a nil transport: pass one that an endpoints constructor made, or a MsgSender or MsgReceiver of your own")
)

// misuse returns the error for a call on the zero or nil Sender, or with a
// nil ctx, if it is one of those.
func (s *Sender[T]) misuse(op string, ctx context.Context) error {
	switch {
	case s == nil || s.t == nil:
		return &OpError{Op: op, Err: errZeroSender}
	case ctx == nil:
		return s.wrapOp(op, errNilContext)
	}
	return nil
}

// misuse is Sender.misuse for a Receiver.
func (r *Receiver[T]) misuse(op string, ctx context.Context) error {
	switch {
	case r == nil || r.t == nil:
		return &OpError{Op: op, Err: errZeroReceiver}
	case ctx == nil:
		return wrapError(op, r.t.String(), errNilContext)
	}
	return nil
}
