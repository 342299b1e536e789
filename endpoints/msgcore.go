package endpoints

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// The message-transport core: the rules every receiver of messages keeps
// (POSIX and SysV queues, datagram and seqpacket sockets, the ring) live
// here once, and each transport supplies only how it takes a message off
// its medium (a msgSource). Byte streams frame their own messages out of a
// buffer and keep only the error and waiting rules (streamReceiver).
//
//   - The end: a stream ends after as many end-of-stream markers as it has
//     senders (ipcchan.WithSenders, default 1), or when the source says the
//     kernel ended it; from then on every receive returns the same error,
//     io.EOF or the failure that ended it (sticky).
//   - Waiting: a blocking receive checks ctx first (a cancelled receive
//     takes nothing), then waits in the source; a non-blocking one returns
//     ipcchan.ErrWouldBlock where the source has nothing (unix.EAGAIN).
//   - The size limit: a value over ipcchan.WithMaxMessageSize is taken off
//     the transport and refused with an error wrapping
//     ipcchan.ErrFrameTooLarge; the next receive goes on after it.
//   - Errors: a system call's error is wrapped with what failed
//     (transportErr); cancellation, Close, a watched peer's exit and the
//     end pass as they are.

// recvCore is the state of one receiver under those rules. A receiver uses
// it from one goroutine at a time (ipcchan.Receiver serializes receives).
type recvCore struct {
	what    string // what a system call's error is wrapped with ("receive")
	max     int    // the largest value delivered
	senders int    // the end-of-stream markers that end the stream
	ended   int    // the markers seen
	sticky  error  // the end: returned by every receive from now on
}

func newRecvCore(what string, max, senders int) recvCore {
	return recvCore{what: what, max: max, senders: senders}
}

// msgKind says what a message taken off a transport is.
type msgKind uint8

const (
	msgValue  msgKind = iota // a value, to deliver
	msgMarker                // a sender's end-of-stream marker
	msgSkip                  // nothing to deliver (a refused datagram, ring padding)
)

// A rawMsg is a message as a source takes it off its transport.
type rawMsg struct {
	kind msgKind
	tag  uint32
	body []byte // in the source's buffer (or the ring), until hand returns
}

// A msgSource is the receiving side of one kind of message transport.
type msgSource interface {
	// take takes the next message off the transport, waiting for one if
	// block is set (returning ctx.Err() if ctx ends first, having taken
	// nothing) and otherwise returning unix.EAGAIN if none is there. An
	// error wrapped with endOf ends the stream with its cause.
	take(ctx context.Context, block bool) (rawMsg, error)

	// hand delivers a value take returned and releases what holds it
	// (the ring's record, under the ring's fault guard), returning
	// deliver's error.
	hand(m rawMsg, deliver func(uint32, []byte) error) error

	// drop releases a message take returned that is not delivered.
	drop(m rawMsg)
}

// coreReceiver gives a msgSource the RecvMsg and TryRecvMsg of
// transport.MsgReceiver, under the core's rules. A transport embeds it,
// with src pointing back to itself.
type coreReceiver[S msgSource] struct {
	core recvCore
	src  S
}

// newCoreReceiver returns src's receiving side under cfg's limit and
// count of senders.
func newCoreReceiver[S msgSource](src S, cfg *transport.Config) coreReceiver[S] {
	return coreReceiver[S]{core: newRecvCore("receive", cfg.MaxMessageSize(), cfg.Senders()), src: src}
}

func (c *coreReceiver[S]) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	return receive(ctx, &c.core, c.src, true, deliver)
}

func (c *coreReceiver[S]) TryRecvMsg(deliver func(uint32, []byte) error) error {
	return receive(context.Background(), &c.core, c.src, false, deliver)
}

// inBuffer is embedded by the sources whose message stays in their own
// buffer until their next take: delivering or dropping it frees nothing.
type inBuffer struct{}

func (inBuffer) hand(m rawMsg, deliver func(uint32, []byte) error) error {
	return deliver(m.tag, m.body)
}

func (inBuffer) drop(rawMsg) {}

// receive delivers the next value of src under c's rules: the body of
// every receiver's RecvMsg (block) and TryRecvMsg.
func receive[S msgSource](ctx context.Context, c *recvCore, src S, block bool, deliver func(uint32, []byte) error) error {
	for {
		if c.sticky != nil {
			return c.sticky
		}
		if c.ended >= c.senders {
			c.sticky = io.EOF
			continue
		}
		if block {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		m, err := src.take(ctx, block)
		if err != nil {
			if err = c.takeErr(err, block); err != nil {
				return err
			}
			continue // the end: sticky from now on
		}
		switch {
		case m.kind == msgSkip:
			continue
		case m.kind == msgMarker:
			src.drop(m)
			c.ended++
			continue
		case len(m.body) > c.max:
			src.drop(m)
			return c.tooLarge(len(m.body))
		}
		return src.hand(m, deliver)
	}
}

// takeErr classifies an error of take: nil if it ended the stream (c is
// now sticky), else the error to return.
func (c *recvCore) takeErr(err error, block bool) error {
	var end *endError
	switch {
	case !block && err == unix.EAGAIN:
		return ipcchan.ErrWouldBlock
	case errors.As(err, &end):
		c.sticky = end.err
		return nil
	}
	return transportErr(c.what, err)
}

// tooLarge is the error for a value of n bytes over the limit, taken off
// the transport and dropped.
func (c *recvCore) tooLarge(n int) error {
	return fmt.Errorf("%w: a %d-byte message, limit %d (discarded)", ipcchan.ErrFrameTooLarge, n, c.max)
}

// endError marks, in what a source returns, the end of its stream: io.EOF
// or the failure every later receive must return (a removed queue, a
// connection reset).
type endError struct{ err error }

func (e *endError) Error() string { return e.err.Error() }
func (e *endError) Unwrap() error { return e.err }

// endOf returns err as the end of the stream.
func endOf(err error) error { return &endError{err} }

// pollRead runs the read op on fd: waiting for readability until op gets
// something if block is set (returning ctx.Err() if ctx ends first), else
// once, returning unix.EAGAIN if nothing is there.
func pollRead(ctx context.Context, fd *poller.FD, block bool, op func(int) error) error {
	if block {
		return fd.Read(ctx, op)
	}
	return fd.TryRead(op)
}
