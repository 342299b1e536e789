package endpoints

import (
	"errors"
	"fmt"

	"github.com/ipcchan/ipcchan/ipcchan"
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
