package endpoints

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// Key is a System V IPC key: from [Ftok], or [IPCPrivate] for a new object
// that only this process and those it tells the identifier can find.
type Key = sys.Key

// IPCPrivate is IPC_PRIVATE.
const IPCPrivate = sys.IPCPrivate

// Ftok returns the System V IPC key for an existing file and a project
// identifier, exactly as the C library's ftok(3) computes it, so a Go and a
// C program agree on the key. Only the low 8 bits of id count. It returns
// the stat error for a missing file.
func Ftok(path string, id int) (Key, error) {
	k, err := sys.Ftok(path, id)
	return k, transport.WrapError("ftok", path, err)
}

// MsgTypeError is the error a typed SysV Receiver returns for a message
// whose type is above 2^32-1, which its uint32 tag cannot report. The
// message has been taken off the queue and is in the error, whole, so
// nothing is lost: its full type and its text (the codec's bytes, as the
// Receiver would have decoded them; the error's own copy). It wraps
// ErrMsgType. Receive such types with [SysVQueue.Receive], or select only
// types up to 2^32-1 (MsgSelect).
type MsgTypeError struct {
	Type int64  // the message's type, whole
	Text []byte // the message's text
}

func (e *MsgTypeError) Error() string {
	return fmt.Sprintf("%v: a %d-byte message of type %d, taken off the queue and returned in this error (*endpoints.MsgTypeError); receive such types with SysVQueue.Receive, or select types up to %d",
		ErrMsgType, len(e.Text), e.Type, uint32(math.MaxUint32))
}

func (e *MsgTypeError) Unwrap() error { return ErrMsgType }

// SysVQueue is a System V message queue, known by its identifier. It is a
// plain handle: it holds no resource in this process and needs no closing;
// the queue lives until [SysVQueue.Remove]. Its methods are safe for
// concurrent use.
type SysVQueue struct {
	id   int
	made bool // by a constructor: a zero SysVQueue refers to no queue

	msgmax atomic.Int64 // the system's msgmax, read at the first Send
}

// CreateSysVQueue creates a message queue for key (IPCPrivate: a new
// private one), with the permission of ipcchan.WithPerm (0600 by default;
// the one option it honours).
// It fails, wrapping os.ErrExist, if a queue with that key exists: a queue
// made by someone else is never taken over (use [OpenSysVQueue] for that).
func CreateSysVQueue(key Key, opts ...ipcchan.Option) (*SysVQueue, error) {
	desc := fmt.Sprintf("sysv mq key %#x", key)
	cfg, err := newConfig("create", desc, optCreate, opts)
	if err != nil {
		return nil, err
	}
	perm := cfg.Perm()
	id, err := sys.Msgget(key, unix.IPC_CREAT|unix.IPC_EXCL|int(perm))
	if err != nil {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: desc, Err: limitErr(err, sysvQueueKind)}
	}
	return &SysVQueue{id: id, made: true}, nil
}

// OpenSysVQueue returns the existing message queue for key, with whatever
// permissions its creator gave it; it wraps os.ErrNotExist if there is none.
// With ipcchan.WithWaitForCreate, the one option it honours, it waits for
// the queue instead, polling (SysV has no creation event).
func OpenSysVQueue(key Key, opts ...ipcchan.Option) (*SysVQueue, error) {
	id, err := openSysV(fmt.Sprintf("sysv mq key %#x", key), opts, func() (int, error) { return sys.Msgget(key, 0) })
	if err != nil {
		return nil, err
	}
	return &SysVQueue{id: id, made: true}, nil
}

// SysVQueueByID returns the queue with identifier id, as another process
// reported it by [SysVQueue.ID]. Nothing is checked until it is used.
func SysVQueueByID(id int) *SysVQueue { return &SysVQueue{id: id, made: true} }

// ID returns the queue's identifier, which other processes can use with
// [SysVQueueByID].
func (q *SysVQueue) ID() int {
	if q == nil {
		return -1
	}
	return q.id
}

func (q *SysVQueue) String() string {
	if !q.isMade() {
		return "zero SysVQueue"
	}
	return fmt.Sprintf("sysv mq %d", q.id)
}

// isMade reports whether a constructor made q. A zero SysVQueue's id, 0,
// may well be somebody's queue: it must never be used.
func (q *SysVQueue) isMade() bool { return q != nil && q.made }

func (q *SysVQueue) notMade(op string) error {
	return errNotMade(op, "SysVQueue", "CreateSysVQueue, OpenSysVQueue or SysVQueueByID")
}

// Remove destroys the queue at once (IPC_RMID): queued messages are lost
// and blocked calls in every process end with an error wrapping ErrRemoved.
func (q *SysVQueue) Remove() error {
	if !q.isMade() {
		return q.notMade("remove")
	}
	return transport.WrapError("remove", q.String(), sys.MsgctlRmid(q.id))
}

// SysVStats describes a System V message queue now.
type SysVStats struct {
	Messages        int    // queued now (msg_qnum)
	Bytes           int    // bytes of text queued now (msg_cbytes)
	MaxBytes        int    // capacity in bytes (msg_qbytes)
	LastSenderPID   int    // msg_lspid
	LastReceiverPID int    // msg_lrpid
	Mode            uint32 // permission bits
	UID, GID        int    // owner
}

// Stats returns the queue's state (IPC_STAT).
func (q *SysVQueue) Stats() (SysVStats, error) {
	if !q.isMade() {
		return SysVStats{}, q.notMade("stat")
	}
	var ds sys.MsqidDs
	if err := sys.MsgctlStat(q.id, &ds); err != nil {
		return SysVStats{}, &ipcchan.OpError{Op: "stat", Endpoint: q.String(), Err: removedErr(err)}
	}
	return SysVStats{
		Messages: int(ds.Qnum), Bytes: int(ds.Cbytes), MaxBytes: int(ds.Qbytes),
		LastSenderPID: int(ds.Lspid), LastReceiverPID: int(ds.Lrpid),
		Mode: uint32(ds.Perm.Mode) & 0o777, UID: int(ds.Perm.Uid), GID: int(ds.Perm.Gid),
	}, nil
}

// Peek returns a copy of the message at position index (0 is the oldest)
// without removing it (MSG_COPY): its type and its text in buf, which must
// be large enough (E2BIG otherwise). It needs a kernel built with
// CONFIG_CHECKPOINT_RESTORE (ENOSYS otherwise) and returns ENOMSG when there
// is no message at index.
func (q *SysVQueue) Peek(index int, buf []byte) (typ int64, n int, err error) {
	if !q.isMade() {
		return 0, 0, q.notMade("peek")
	}
	b := make([]byte, sys.MtypeSize+len(buf))
	n, err = sys.Msgrcv(q.id, b, int64(index), sys.MSG_COPY|unix.IPC_NOWAIT)
	if err != nil {
		return 0, 0, &ipcchan.OpError{Op: "peek", Endpoint: q.String(), Err: removedErr(err)}
	}
	copy(buf, b[sys.MtypeSize:sys.MtypeSize+n])
	return sys.Mtype(b), n, nil
}

// MsgSelect says which messages a SysV receiver takes, as msgrcv(2)'s
// msgtyp and flags do.
type MsgSelect struct {
	// Type: 0 takes every message in order; > 0 only messages of that
	// type (or, with Except, of any other type); < 0 the lowest type up to
	// -Type first.
	Type   int64
	Except bool

	// Truncate (MSG_NOERROR) delivers the first bytes of a message longer
	// than the receiver's buffer; without it such a message is taken off
	// the queue and reported as ErrFrameTooLarge.
	Truncate bool
}

// SysVSender returns a Sender on q. The tag of a message (SendTag, or
// ipcchan.WithTag for Send) is its message type, which must be > 0; Send
// with no tag configured uses type 1. Messages longer than the system's
// msgmax are refused before sending. Close posts an end-of-stream marker
// of the sender's type (ipcchan.WithTag, default 1), waiting up to the
// linger time for room — none with ipcchan.WithForeignPeer, for a
// receiver that is not ipcchan, whose receivers in turn take every message
// as it is and never return io.EOF. A value that begins like the marker is
// sent escaped, 16 bytes longer (see the README), so that no value ends
// the stream; one whose escaped form exceeds msgmax is refused with
// ErrMessageTooLarge. Options: those of a Sender (WithTag(0) is refused)
// and WithLinger (refused with WithForeignPeer, which posts no marker).
func SysVSender[T any](q *SysVQueue, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	if !q.isMade() {
		return nil, q.notMade("open")
	}
	cfg, err := newConfig("open", q.String(), optMsgSend, opts)
	if err != nil {
		return nil, err
	}
	if !cfg.Given(transport.OptTag) {
		// Type 1 unless the caller says otherwise: SysV types start at 1.
		opts = append(opts[:len(opts):len(opts)], ipcchan.WithTag(1))
		if cfg, err = newConfig("open", q.String(), optMsgSend, opts); err != nil {
			return nil, err
		}
	}
	if err := checkMarkerless("open", q.String(), cfg); err != nil {
		return nil, err
	}
	t := newSysVTransport(q, cfg)
	t.sending = true
	return senderOver[T](t, cfg)
}

// SysVReceiver returns a Receiver on q that takes the messages sel selects;
// RecvTag reports each one's type. A message whose type is above 2^32-1,
// which the tag cannot hold, is returned as a *MsgTypeError carrying the
// whole type and the message; a selection of exactly such a type (Type
// above 2^32-1 without Except) is refused with an error wrapping
// ErrMsgType. Several receivers, of different element
// types, can share one queue, one per message type, and an ipcchan.Select
// waits on all of them (polling, every millisecond backing off to 50 ms
// while idle: a SysV queue has no descriptor). A receiver ends with io.EOF after as many end-of-stream
// markers of the types it selects as ipcchan.WithSenders says (default 1);
// a peer that dies without closing is seen through Receiver.WatchPeer.
//
// Waiting: a receive first spins briefly, then blocks in msgrcv on a
// thread of its own, which cancellation, Close or a watched peer's exit
// interrupt with a signal (see the README): a cancelled receive has taken
// nothing. Options: those of a Receiver and WithSenders (refused with
// WithForeignPeer, which counts no markers).
func SysVReceiver[T any](q *SysVQueue, sel MsgSelect, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	if !q.isMade() {
		return nil, q.notMade("open")
	}
	if err := mtypeRange(sel.Type); err != nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: q.String(), Err: err}
	}
	if sel.Type > math.MaxUint32 && !sel.Except {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: q.String(), Err: fmt.Errorf("%w: MsgSelect.Type %d: a typed Receiver reports types up to %d; receive this type with SysVQueue.Receive",
			ErrMsgType, sel.Type, uint32(math.MaxUint32))}
	}
	cfg, err := newConfig("open", q.String(), optMsgRecv, opts)
	if err != nil {
		return nil, err
	}
	if err := checkMarkerless("open", q.String(), cfg); err != nil {
		return nil, err
	}
	t := newSysVTransport(q, cfg)
	t.sel = sel
	return receiverOver[T](t, cfg)
}

// sysvTransport is one end of a System V message queue. It implements
// transport.MsgSender and transport.MsgReceiver.
type sysvTransport struct {
	coreReceiver[*sysvTransport] // RecvMsg and TryRecvMsg, by the core's rules
	inBuffer                     // a message is delivered from buf

	q       *SysVQueue
	desc    string
	maxText int
	linger  time.Duration
	sending bool
	tag     uint32 // the sender's own type, for its marker

	rd, wr *poller.Blocking

	raw bool // no end-of-stream markers (ipcchan.WithForeignPeer)

	// Receive side, one goroutine at a time.
	sel MsgSelect
	buf []byte // the struct msgbuf msgrcv fills
	n   int    // the length of its text

	// Send side, one goroutine at a time: the struct msgbuf to send.
	out []byte

	sends     callGuard // Close waits for Sends before it posts the marker
	handedOff atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

func newSysVTransport(q *SysVQueue, cfg *transport.Config) *sysvTransport {
	t := &sysvTransport{
		q: q, desc: q.String(), maxText: readSysctl("kernel/msgmax", 8192),
		linger: cfg.Linger(), tag: cfg.Tag(),
		rd: poller.NewBlocking(0, nil), wr: poller.NewBlocking(0, nil), raw: cfg.ForeignPeer(),
	}
	t.coreReceiver = newCoreReceiver(t, cfg)
	return t
}

func (t *sysvTransport) String() string { return t.desc }

// MaxMsgSize is the system's msgmax.
func (t *sysvTransport) MaxMsgSize() int { return t.maxText }

func (t *sysvTransport) recv(flags int) error {
	if t.buf == nil {
		t.buf = make([]byte, sys.MtypeSize+t.maxText)
	}
	typ := t.sel.Type
	if t.sel.Except {
		flags |= sys.MSG_EXCEPT
	}
	if t.sel.Truncate {
		flags |= sys.MSG_NOERROR
	}
	n, err := sys.Msgrcv(t.q.id, t.buf, typ, flags)
	if err == unix.E2BIG {
		// Longer than msgmax was when we sized the buffer: take it off
		// the queue rather than leave it blocking everything behind it.
		sys.Msgrcv(t.q.id, t.buf, typ, flags|sys.MSG_NOERROR|unix.IPC_NOWAIT)
		return errTooBig
	}
	if err == unix.ENOMSG {
		err = unix.EAGAIN
	}
	t.n = n
	return err
}

var errTooBig = errors.New("message longer than the receive buffer")

func (t *sysvTransport) tryRecv() error   { return t.recv(unix.IPC_NOWAIT) }
func (t *sysvTransport) blockRecv() error { return t.recv(0) }
func (t *sysvTransport) trySend() error   { return sys.Msgsnd(t.q.id, t.out, unix.IPC_NOWAIT) }
func (t *sysvTransport) blockSend() error { return sys.Msgsnd(t.q.id, t.out, 0) }

// take receives the next message the selector picks (see msgSource): a
// marker is a body of exactly the marker, of any type.
func (t *sysvTransport) take(ctx context.Context, block bool) (rawMsg, error) {
	var err error
	if block {
		err = poller.Do(ctx, t.rd, (*sysvTransport).tryRecv, (*sysvTransport).blockRecv, t)
	} else {
		err = t.tryRecv()
	}
	switch {
	case err == nil:
	case err == errTooBig:
		return rawMsg{}, fmt.Errorf("%w: a message longer than msgmax %d (discarded)", ipcchan.ErrFrameTooLarge, t.maxText)
	case err == unix.EIDRM, err == unix.EINVAL:
		return rawMsg{}, endOf(removedErr(err))
	default:
		return rawMsg{}, queueErr(err)
	}
	typ := uint64(sys.Mtype(t.buf)) // > 0: msgsnd refuses other types
	m := rawMsg{body: t.buf[sys.MtypeSize : sys.MtypeSize+t.n]}
	if !t.raw {
		var eos bool
		if m.body, eos = queueBody(m.body); eos {
			m.kind = msgMarker
			return m, nil
		}
	}
	if typ > math.MaxUint32 && len(m.body) <= t.core.max {
		// A C long the tag cannot hold: never cut it, hand it all back.
		return rawMsg{}, &MsgTypeError{Type: int64(typ), Text: bytes.Clone(m.body)}
	}
	m.tag = uint32(typ)
	return m, nil
}

// mtypeRange refuses a message type (or a selection, negative) a C long
// cannot hold: one beyond ±(2^31-1) on 32-bit Linux.
func mtypeRange(typ int64) error {
	if typ > sys.MaxMtype || typ < -sys.MaxMtype {
		return fmt.Errorf("%w: type %d: SysV message types are C longs, at most %d on this %d-bit system", ErrMsgType, typ, int64(sys.MaxMtype), 8*sys.MtypeSize)
	}
	return nil
}

func queueErr(err error) error {
	switch {
	case err == context.Canceled, err == context.DeadlineExceeded, errors.Is(err, os.ErrClosed), errors.Is(err, ipcchan.ErrPeerGone):
		return err
	}
	return removedErr(err)
}

func removedErr(err error) error {
	if err == unix.EIDRM || err == unix.EINVAL {
		return fmt.Errorf("%w: the queue was removed (%w)", ErrRemoved, err)
	}
	return err
}

// checkTag refuses type 0 (SysV message types start at 1) and a type
// beyond this system's C long.
func (t *sysvTransport) checkTag(typ uint32) error {
	if typ == 0 {
		return fmt.Errorf("%w: SysV message types start at 1", ErrReservedTag)
	}
	return mtypeRange(int64(typ))
}

// frame lays out a message as msgsnd wants it: the type, then the text.
func (t *sysvTransport) frame(typ uint32, msg []byte) error {
	if err := t.checkTag(typ); err != nil {
		return err
	}
	if len(msg) > t.maxText {
		return fmt.Errorf("%w: %d bytes, msgmax is %d", ipcchan.ErrMessageTooLarge, len(msg), t.maxText)
	}
	t.out = sys.AppendMtype(t.out[:0], int64(typ))
	if t.raw {
		t.out = append(t.out, msg...)
		return nil
	}
	var err error
	t.out, err = appendQueueValue(t.out, msg, t.maxText) // escaped if it begins like the marker
	return err
}

func (t *sysvTransport) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	if err := t.frame(tag, msg); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !t.sends.enter() {
		return os.ErrClosed
	}
	defer t.sends.leave()
	return queueErr(poller.Do(ctx, t.wr, (*sysvTransport).trySend, (*sysvTransport).blockSend, t))
}

func (t *sysvTransport) TrySendMsg(tag uint32, msg []byte) error {
	if err := t.frame(tag, msg); err != nil {
		return err
	}
	if !t.sends.enter() {
		return os.ErrClosed
	}
	defer t.sends.leave()
	if err := t.trySend(); err != unix.EAGAIN {
		return queueErr(err)
	}
	return ipcchan.ErrWouldBlock
}

// Fail makes waits return err once queued messages are taken.
func (t *sysvTransport) Fail(err error) {
	t.rd.Fail(err)
	t.wr.Fail(err)
}

func (t *sysvTransport) setHandedOff() { t.handedOff.Store(true) }

// Close wakes blocked calls, which return an error wrapping os.ErrClosed
// (a Send so woken has sent nothing); a sender's end then waits for a Send
// in progress and posts its end-of-stream marker after everything its
// Sends committed, waiting up to the linger time for room. The queue
// itself stays.
func (t *sysvTransport) Close() error {
	t.closeOnce.Do(func() {
		t.sends.close()
		t.wr.Close()
		t.sends.wait()
		if t.sending && !t.raw && !t.handedOff.Load() && t.wr.Failure() == nil {
			marker := sys.AppendMtype(nil, int64(t.tag))
			marker = append(marker, queueEOS...)
			t.closeErr = postEOS(t.linger, func() error {
				err := sys.Msgsnd(t.q.id, marker, unix.IPC_NOWAIT)
				if err == unix.EIDRM || err == unix.EINVAL {
					return nil // nobody is left to tell
				}
				return err
			})
		}
		t.rd.Close()
	})
	return t.closeErr
}
