package endpoints

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// Send sends text as one message of type typ, exactly as msgsnd(2) does:
// typ is the whole C long (1 to 2^63-1, beyond the uint32 tag of a typed
// Sender) and text goes as it is, without the escape a typed Sender gives
// a value that begins like the end-of-stream marker. It waits while the
// queue is full, until ctx ends: it then returns ctx.Err() having sent
// nothing. A type below 1 is refused with ErrReservedTag, a text longer
// than the system's msgmax with ErrMessageTooLarge, and a removed queue
// gives an error wrapping ErrRemoved. Send is safe for concurrent use and
// allocates nothing once warm.
func (q *SysVQueue) Send(ctx context.Context, typ int64, text []byte) error {
	switch {
	case !q.isMade():
		return q.notMade("send")
	case ctx == nil:
		return &ipcchan.OpError{Op: "send", Endpoint: q.String(), Err: errNilContext}
	}
	if typ < 1 {
		return &ipcchan.OpError{Op: "send", Endpoint: q.String(), Err: fmt.Errorf("%w: message type %d: SysV message types start at 1", ErrReservedTag, typ)}
	}
	if err := mtypeRange(typ); err != nil {
		return &ipcchan.OpError{Op: "send", Endpoint: q.String(), Err: err}
	}
	if max := q.maxText(); len(text) > max {
		return &ipcchan.OpError{Op: "send", Endpoint: q.String(), Err: fmt.Errorf("%w: %d bytes, msgmax is %d (raise kernel.msgmax)", ipcchan.ErrMessageTooLarge, len(text), max)}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := getSysVCall(q.id)
	defer putSysVCall(c)
	c.buf = sys.AppendMtype(c.buf[:0], typ)
	c.buf = append(c.buf, text...)
	if err := poller.Do(ctx, c.b, (*sysvCall).trySend, (*sysvCall).blockSend, c); err != nil {
		return transport.WrapError("send", q.String(), queueErr(err))
	}
	return nil
}

// Receive takes the first message sel selects, exactly as msgrcv(2) does,
// and returns its whole type and the length of its text, copied into buf:
// no end-of-stream marker is recognised and no escape removed (see
// [SysVReceiver] for those). A message longer than buf stays queued and
// gives an error wrapping ErrFrameTooLarge, unless sel.Truncate, which
// takes it and keeps its first len(buf) bytes. It waits until a message
// comes or ctx ends, returning ctx.Err() having taken nothing; a removed
// queue gives an error wrapping ErrRemoved. Receive is safe for concurrent
// use and allocates nothing once warm.
func (q *SysVQueue) Receive(ctx context.Context, sel MsgSelect, buf []byte) (typ int64, n int, err error) {
	switch {
	case !q.isMade():
		return 0, 0, q.notMade("recv")
	case ctx == nil:
		return 0, 0, &ipcchan.OpError{Op: "recv", Endpoint: q.String(), Err: errNilContext}
	}
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	if err := mtypeRange(sel.Type); err != nil {
		return 0, 0, &ipcchan.OpError{Op: "recv", Endpoint: q.String(), Err: err}
	}
	c := getSysVCall(q.id)
	defer putSysVCall(c)
	c.typ, c.flags = sel.Type, 0
	if sel.Except {
		c.flags |= sys.MSG_EXCEPT
	}
	if sel.Truncate {
		c.flags |= sys.MSG_NOERROR
	}
	if cap(c.buf) < sys.MtypeSize+len(buf) {
		c.buf = make([]byte, sys.MtypeSize+len(buf))
	}
	c.buf = c.buf[:sys.MtypeSize+len(buf)]
	switch err := poller.Do(ctx, c.b, (*sysvCall).tryRecv, (*sysvCall).blockRecv, c); {
	case err == nil:
	case err == unix.E2BIG:
		return 0, 0, &ipcchan.OpError{Op: "recv", Endpoint: q.String(), Err: fmt.Errorf("%w: the message is longer than the %d-byte buffer and stays queued: receive it with a larger buffer, or with MsgSelect.Truncate", ipcchan.ErrFrameTooLarge, len(buf))}
	default:
		return 0, 0, transport.WrapError("recv", q.String(), queueErr(err))
	}
	return sys.Mtype(c.buf), copy(buf, c.buf[sys.MtypeSize:sys.MtypeSize+c.n]), nil
}

// maxText returns the system's msgmax, read once.
func (q *SysVQueue) maxText() int {
	if m := q.msgmax.Load(); m > 0 {
		return int(m)
	}
	m := readSysctl("kernel/msgmax", 8192)
	q.msgmax.Store(int64(m))
	return m
}

// sysvCall is the state of one Send or Receive: the struct msgbuf and the
// interruptible wait, pooled so that a call allocates nothing.
type sysvCall struct {
	b     *poller.Blocking
	buf   []byte
	id    int
	typ   int64
	flags int
	n     int
}

var sysvCalls sync.Pool

func getSysVCall(id int) *sysvCall {
	c, _ := sysvCalls.Get().(*sysvCall)
	if c == nil {
		c = &sysvCall{b: poller.NewBlocking(0, nil)}
	}
	c.id = id
	return c
}

func putSysVCall(c *sysvCall) {
	if cap(c.buf) > 1<<20 {
		c.buf = nil // keep no huge buffer for the next call
	}
	sysvCalls.Put(c)
}

func (c *sysvCall) trySend() error   { return sys.Msgsnd(c.id, c.buf, unix.IPC_NOWAIT) }
func (c *sysvCall) blockSend() error { return sys.Msgsnd(c.id, c.buf, 0) }
func (c *sysvCall) tryRecv() error   { return c.recv(unix.IPC_NOWAIT) }
func (c *sysvCall) blockRecv() error { return c.recv(0) }

func (c *sysvCall) recv(flags int) error {
	n, err := sys.Msgrcv(c.id, c.buf, c.typ, c.flags|flags)
	if err == unix.ENOMSG {
		err = unix.EAGAIN
	}
	c.n = n
	return err
}
