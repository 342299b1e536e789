package endpoints

import (
	"errors"
	"fmt"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
	"golang.org/x/sys/unix"
)

// Misuse is reported, never a crash: a method called on the zero value of a
// type (declared rather than made) or on a nil pointer returns this error,
// and a nil context is refused with errNilContext.

var errNilContext = errors.New("nil context.Context: pass context.Background() when nothing should cancel the call")

// errNilFile is the error of op on a nil *os.File argument.
func errNilFile(op string) error {
	return &ipcchan.OpError{Op: op, Endpoint: "nil *os.File", Err: errors.New("a nil *os.File: pass an open file")}
}

// errNotMade is the error of op on a zero or nil typ, which ctor makes.
func errNotMade(op, typ, ctor string) error {
	return &ipcchan.OpError{Op: op, Endpoint: "zero " + typ, Err: fmt.Errorf("a %s nobody made: make one with %s", typ, ctor)}
}

// transportErr wraps a system call's error, a bare errno, with what the
// transport was doing (what: "send", "receive", ...). Every other error
// already says what it is (nil, io.EOF, the context's errors,
// ErrWouldBlock, os.ErrClosed, ErrPeerGone, ErrCorrupt, a refusal) and
// passes as it is.
func transportErr(what string, err error) error {
	if errno, ok := err.(unix.Errno); ok {
		return fmt.Errorf("%s: %w", what, errno)
	}
	return err
}

// opErr is the error of op on endpoint failing with err, a system call's:
// an *ipcchan.OpError that, for a limit reached (too many open files in
// this process or the system), says which limit and where to raise it.
func opErr(op, endpoint string, err error) error {
	return &ipcchan.OpError{Op: op, Endpoint: endpoint, Err: limitErr(err, descriptorKind)}
}

// wrapErr is ipcchan.WrapError for an error that may be a limit reached:
// see opErr.
func wrapErr(op, endpoint string, err error) error {
	return transport.WrapError(op, endpoint, limitErr(err, descriptorKind))
}
