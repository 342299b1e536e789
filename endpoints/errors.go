package endpoints

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// The errors endpoints wrap, for errors.Is. (Errors every transport
// shares, ErrPeerGone and the like, are package ipcchan's.)
var (
	// ErrAddrInUse is wrapped by the error for a socket path another process
	// listens on, or is about to.
	ErrAddrInUse = errors.New("address in use")

	// ErrCorrupt is wrapped by the error a ring end returns when the shared
	// header or a record holds values no correct peer writes: a wrong magic or
	// version, a capacity that does not match the mapping, offsets out of
	// range, a record longer than the ring. It is also wrapped by the error of
	// every access to shared memory — ring, semaphore, view — that faulted
	// because a peer shrank the object under the mapping (see [Mapping]).
	ErrCorrupt = errors.New("corrupt shared memory")

	// ErrInvalidName is wrapped by the error for a malformed object name.
	ErrInvalidName = errors.New("invalid name")

	// ErrMappingSize is wrapped by errors for a size that does not fit:
	// zero or negative, or larger than the object, or too small for its use.
	ErrMappingSize = errors.New("unusable mapping size")

	// ErrMsgType is wrapped by the error for a SysV message type that the
	// uint32 tag of a typed Sender or Receiver cannot hold: message types are C
	// longs, 1 to 2^63-1, and they are never cut to 32 bits.
	ErrMsgType = errors.New("SysV message type beyond the 32-bit tag")

	// ErrNotFIFO is wrapped by the errors for a FIFO path that is something else.
	ErrNotFIFO = errors.New("not a FIFO")

	// ErrNotInherited is wrapped by the errors of InheritSender and
	// InheritReceiver when no usable endpoint of that name was handed down.
	ErrNotInherited = errors.New("endpoint not inherited")

	// ErrNotLocked is wrapped by the error of Unlock on a FileLock that holds
	// nothing.
	ErrNotLocked = errors.New("not locked")

	// ErrNotifyBusy is wrapped by the error of [MQNotifier.Wait] when another
	// process is registered for the queue's notifications.
	ErrNotifyBusy = errors.New("another process is registered for notifications of this queue")

	// ErrOtherUser is wrapped by Leftover.Remove's error for an object of
	// another user, which Remove leaves alone whatever pid its name or key
	// holds: anyone can name an object so.
	ErrOtherUser = errors.New("belongs to another user")

	// ErrOwnerAlive is wrapped by Leftover.Remove's error for an object whose
	// owner still runs.
	ErrOwnerAlive = errors.New("its owner is still running")

	// ErrPeerRefused is wrapped by the error for a Unix socket peer that the
	// peer check refused: the default check of an abstract name (see
	// [SameUser]) or one set with ipcchan.WithPeerCheck, [AllowIDs] or
	// [AnyUser].
	ErrPeerRefused = errors.New("peer refused")

	// ErrRemoved is wrapped by the error for a System V object removed while in
	// use (EIDRM): calls blocked on it end with this error instead of hanging.
	ErrRemoved = errors.New("removed")

	// ErrReplaced is wrapped by Leftover.Remove's error for an object that is
	// no longer the one Leftovers listed under its name: it is left alone.
	ErrReplaced = errors.New("replaced since it was listed")

	// ErrReservedTag is wrapped by the error for a message sent with a tag the
	// transport reserves or cannot carry — 0xFFFFFFFF marks end of stream on
	// datagram sockets, tags from 0x80000000 up mark attached files on Unix
	// stream sockets, POSIX priorities end at 32767, SysV types start at 1, a
	// foreign peer's datagram has no tag — and for WithTag of such a tag,
	// which the constructor refuses. It is ipcchan.ErrReservedTag.
	ErrReservedTag = ipcchan.ErrReservedTag

	// ErrSemOverflow is wrapped by the error of a Release that would take a
	// semaphore past SEM_VALUE_MAX.
	ErrSemOverflow = errors.New("semaphore value overflow")

	// ErrNoSlot is wrapped by the error of Subscribe on a broadcast whose
	// subscriber slots are all taken (see ipcchan.WithSubscribers).
	ErrNoSlot = errors.New("no free subscriber slot")
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
