package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// MQAttr sets the size of a POSIX message queue when it is created: how
// many messages it holds and how long each may be. Zero fields take the
// system defaults (/proc/sys/fs/mqueue/msg_default and msgsize_default);
// values above msg_max and msgsize_max need CAP_SYS_RESOURCE.
type MQAttr struct {
	MaxMsgs int
	MsgSize int
}

// MQStats describes a POSIX message queue now.
type MQStats struct {
	Messages int // queued now
	MaxMsgs  int // capacity in messages
	MsgSize  int // largest message in bytes
}

// mqName checks a POSIX queue name ("/name": a slash, then 1 to 255 bytes
// without a slash or NUL) and returns the kernel's form, without the slash.
func mqName(name string) (string, error) {
	if !strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w %q: a POSIX queue name starts with a slash", ErrInvalidName, name)
	}
	k := name[1:]
	switch {
	case k == "" || len(k) > 255:
		return "", fmt.Errorf("%w %q: 1 to 255 bytes after the slash", ErrInvalidName, name)
	case strings.ContainsAny(k, "/\x00"), k == ".", k == "..":
		return "", fmt.Errorf("%w %q: no further slash or NUL, and not \".\" or \"..\"", ErrInvalidName, name)
	}
	return k, nil
}

// CreateMQ creates the POSIX message queue name ("/something") with the
// given size and the permission of ipcchan.WithPerm (0600 by default under
// the umask; the one option it honours). It fails, wrapping os.ErrExist, if
// the queue exists: a queue made by someone else is never taken over.
// Remove it with [RemoveMQ].
func CreateMQ(name string, attr MQAttr, opts ...ipcchan.Option) error {
	cfg, err := newConfig("create", name, optCreate, opts)
	if err != nil {
		return err
	}
	fd, err := createMQ(name, attr, cfg.Perm())
	if err != nil {
		return err
	}
	unix.Close(fd)
	return nil
}

func createMQ(name string, attr MQAttr, perm os.FileMode) (int, error) {
	k, err := mqName(name)
	if err != nil {
		return -1, opErr("create", name, err)
	}
	var a *sys.MqAttr
	if attr.MaxMsgs != 0 || attr.MsgSize != 0 {
		a = &sys.MqAttr{Maxmsg: attr.MaxMsgs, Msgsize: attr.MsgSize}
		if a.Maxmsg == 0 {
			a.Maxmsg = readSysctl("fs/mqueue/msg_default", 10)
		}
		if a.Msgsize == 0 {
			a.Msgsize = readSysctl("fs/mqueue/msgsize_default", 8192)
		}
	}
	// The mode is applied under the umask, which may only take bits away.
	fd, err := sys.MqOpen(k, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NONBLOCK, uint32(perm.Perm()), a)
	if err != nil {
		if err == unix.EINVAL && a != nil {
			err = mqAttrErr(err, a)
		}
		return -1, &ipcchan.OpError{Op: "create", Endpoint: name, Err: limitErr(err, posixQueueKind)}
	}
	return fd, nil
}

// Linux's own ceilings on a queue's sizes (HARD_MSGMAX, HARD_MSGSIZEMAX).
const (
	hardMsgMax     = 65536
	hardMsgSizeMax = 16 << 20
)

// mqAttrErr says which of a queue's sizes the kernel refused (EINVAL): one
// not positive, or one above the system's maximum, which only a process
// with CAP_SYS_RESOURCE may pass.
func mqAttrErr(err error, a *sys.MqAttr) error {
	maxMsgs := readSysctl("fs/mqueue/msg_max", 10)
	maxSize := readSysctl("fs/mqueue/msgsize_max", 8192)
	switch {
	case a.Maxmsg <= 0 || a.Msgsize <= 0:
		return fmt.Errorf("%w: a queue holds at least one message of at least one byte (MQAttr %d messages of %d bytes)", err, a.Maxmsg, a.Msgsize)
	case a.Maxmsg > hardMsgMax:
		return fmt.Errorf("%w: %d messages: Linux allows at most %d in a queue, whatever the privileges", err, a.Maxmsg, hardMsgMax)
	case a.Msgsize > hardMsgSizeMax:
		return fmt.Errorf("%w: %d-byte messages: Linux allows at most %d bytes, whatever the privileges", err, a.Msgsize, hardMsgSizeMax)
	case a.Maxmsg > maxMsgs:
		return fmt.Errorf("%w: %d messages is above the system's maximum %d: raise fs.mqueue.msg_max (sysctl), or create the queue with CAP_SYS_RESOURCE", err, a.Maxmsg, maxMsgs)
	case a.Msgsize > maxSize:
		return fmt.Errorf("%w: %d-byte messages are above the system's maximum %d: raise fs.mqueue.msgsize_max (sysctl), or create the queue with CAP_SYS_RESOURCE", err, a.Msgsize, maxSize)
	}
	return err
}

// RemoveMQ removes the POSIX message queue name. Open descriptors keep
// working until closed.
func RemoveMQ(name string) error {
	k, err := mqName(name)
	if err == nil {
		err = sys.MqUnlink(k)
	}
	return transport.WrapError("unlink", name, err)
}

// StatMQ returns the state of the POSIX message queue name.
func StatMQ(name string) (MQStats, error) {
	k, err := mqName(name)
	if err != nil {
		return MQStats{}, opErr("stat", name, err)
	}
	fd, err := sys.MqOpen(k, unix.O_RDONLY|unix.O_CLOEXEC, 0, nil)
	if err != nil {
		return MQStats{}, opErr("stat", name, err)
	}
	defer unix.Close(fd)
	st, err := mqStats(fd)
	return st, transport.WrapError("stat", name, err)
}

func mqStats(fd int) (MQStats, error) {
	var a sys.MqAttr
	if err := sys.MqGetsetattr(fd, nil, &a); err != nil {
		return MQStats{}, err
	}
	return MQStats{Messages: int(a.Curmsgs), MaxMsgs: int(a.Maxmsg), MsgSize: int(a.Msgsize)}, nil
}

// MQSenderStats returns the state of the POSIX queue tx sends to (a Sender
// of OpenMQSender, MQPair, or one inherited); it wraps
// ipcchan.ErrNotSupported for a Sender on another transport.
func MQSenderStats[T any](tx *ipcchan.Sender[T]) (MQStats, error) {
	return posixMQStats(tx.Transport())
}

// MQReceiverStats returns the state of the POSIX queue rx receives from;
// see [MQSenderStats].
func MQReceiverStats[T any](rx *ipcchan.Receiver[T]) (MQStats, error) {
	return posixMQStats(rx.Transport())
}

func posixMQStats(t any) (MQStats, error) {
	q, ok := t.(*posixMQ)
	if !ok {
		return MQStats{}, &ipcchan.OpError{Op: "stat", Endpoint: fmt.Sprint(t), Err: fmt.Errorf("%w: not a POSIX message queue", ipcchan.ErrNotSupported)}
	}
	var st MQStats
	var err error
	if cerr := q.fd.Control(func(fd int) { st, err = mqStats(fd) }); cerr != nil {
		err = cerr
	}
	return st, transport.WrapError("stat", q.desc, err)
}

// OpenMQSender returns a Sender on the existing POSIX queue name. The tag
// of a message (SendTag, or ipcchan.WithTag for Send) is its priority,
// 0 to 32767; messages longer than the queue's message size are refused
// before anything is sent. Close posts an end-of-stream marker (see
// [OpenMQReceiver]), waiting up to the linger time for room — except with
// ipcchan.WithForeignPeer, for a receiver that is not ipcchan. A value
// that begins like the marker is sent escaped, 16 bytes longer (see
// PROTOCOL.md §7), so that no value ends the stream; one whose escaped form
// does not fit the queue is refused with ErrMessageTooLarge. Options: those
// of a Sender, WithLinger (refused with WithForeignPeer, which posts no
// marker) and WithWaitForCreate; WithHandshake(true) is refused, since the
// hello's tag is no priority.
func OpenMQSender[T any](name string, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	desc := "posix mq " + name
	cfg, err := newConfig("open", desc, optMsgSend|optWait, opts)
	if err != nil {
		return nil, err
	}
	fd, err := openMQWaiting(cfg, name, unix.O_WRONLY)
	if err != nil {
		return nil, err
	}
	return newMQSenderOn[T](fd, desc, cfg)
}

// OpenMQReceiver returns a Receiver on the existing POSIX queue name. It
// receives the oldest message of the highest priority first; RecvTag
// reports the priority. A queue has no kernel end of stream: Recv returns
// io.EOF once as many senders as ipcchan.WithSenders says (default 1) have
// closed, each posting a marker; a peer that dies without closing is seen
// through Receiver.WatchPeer. A message that carries an escaped value is
// delivered without its escape. With ipcchan.WithForeignPeer every message
// is delivered as it is, markers and escapes included, and Recv never
// returns io.EOF. Options: those of a Receiver, WithSenders (refused with
// WithForeignPeer, which counts no markers) and WithWaitForCreate;
// WithHandshake(true) is refused, as by OpenMQSender.
func OpenMQReceiver[T any](name string, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	desc := "posix mq " + name
	cfg, err := newConfig("open", desc, optMsgRecv|optWait, opts)
	if err != nil {
		return nil, err
	}
	fd, err := openMQWaiting(cfg, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return newMQReceiverOn[T](fd, desc, cfg)
}

// openMQWaiting is openMQ, waiting for the queue to be created if cfg
// says so (ipcchan.WithWaitForCreate): on inotify where /dev/mqueue is
// mounted, else polling.
func openMQWaiting(cfg *transport.Config, name string, mode int) (int, error) {
	wctx, release, err := waitContext(cfg, nil, "open", "posix mq "+name)
	if err != nil {
		return -1, err
	}
	defer release()
	fd := -1
	err = awaitCreate(wctx, "posix mq "+name, mqueueDir(), func() (openState, error) {
		var err error
		if fd, err = openMQ(name, mode); notExist(err) {
			return notCreated, err
		}
		return opened, err
	})
	return fd, wrapErr("open", name, err)
}

// mqueueDir returns /dev/mqueue if the mqueue file system is mounted
// there, the directory its queues appear in; "" otherwise.
func mqueueDir() string {
	const mqueueMagic = 0x19800202
	var st unix.Statfs_t
	if unix.Statfs("/dev/mqueue", &st) != nil || st.Type != mqueueMagic {
		return ""
	}
	return "/dev/mqueue"
}

func openMQ(name string, mode int) (int, error) {
	k, err := mqName(name)
	if err != nil {
		return -1, opErr("open", name, err)
	}
	fd, err := sys.MqOpen(k, mode|unix.O_CLOEXEC|unix.O_NONBLOCK, 0, nil)
	if err != nil {
		return -1, opErr("open", name, err)
	}
	return fd, nil
}

// MQPair returns a Sender and a Receiver on a new POSIX queue that has no
// name: it is created under a random name and unlinked at once, so nothing
// is left behind however the program ends. Hand either end to a child with
// [Pass]. Options are those of [OpenMQSender] and [OpenMQReceiver].
func MQPair[T any](attr MQAttr, opts ...ipcchan.Option) (*ipcchan.Sender[T], *ipcchan.Receiver[T], error) {
	desc := "posix mq (unnamed)"
	cfg, err := newConfig("create", desc, optMsgSend|optMsgRecv, opts)
	if err != nil {
		return nil, nil, err
	}
	name := ObjectName("pair") // found by Leftovers if we die before the unlink
	fd, err := createMQ(name, attr, 0o600)
	if err != nil {
		return nil, nil, err
	}
	k, _ := mqName(name)
	if err := sys.MqUnlink(k); err != nil {
		// The queue would outlive us under its name.
		unix.Close(fd)
		return nil, nil, &ipcchan.OpError{Op: "create", Endpoint: name, Err: fmt.Errorf("unlink the new queue: %w", err)}
	}
	wfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return nil, nil, &ipcchan.OpError{Op: "open", Endpoint: "posix mq", Err: limitErr(err, descriptorKind)}
	}
	rx, err := newMQReceiverOn[T](fd, desc, cfg)
	if err != nil {
		unix.Close(wfd)
		return nil, nil, err
	}
	tx, err := newMQSenderOn[T](wfd, desc, cfg)
	if err != nil {
		rx.Close()
		return nil, nil, err
	}
	return tx, rx, nil
}

func newMQReceiverOn[T any](fd int, desc string, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	q, err := newPosixMQ(fd, desc, cfg)
	if err != nil {
		return nil, err
	}
	return receiverOver[T](q, cfg)
}

func newMQSenderOn[T any](fd int, desc string, cfg *transport.Config) (*ipcchan.Sender[T], error) {
	q, err := newPosixMQ(fd, desc, cfg)
	if err != nil {
		return nil, err
	}
	q.sending = true
	return senderOver[T](q, cfg)
}

// posixMQ is one end of a POSIX message queue: the queue descriptor on
// the runtime poller (Linux reports it readable while messages are queued
// and writable while there is room). It implements transport.MsgSender and
// transport.MsgReceiver.
type posixMQ struct {
	coreReceiver[*posixMQ] // RecvMsg and TryRecvMsg, by the core's rules
	inBuffer               // a message is delivered from buf

	fd      *poller.FD
	desc    string
	msgSize int
	linger  time.Duration
	sending bool // a sender's end: Close posts the end-of-stream marker
	raw     bool // no end-of-stream markers (ipcchan.WithForeignPeer)

	// handedOff: another process holds the descriptor too and will post
	// its own marker, so Close posts none.
	handedOff atomic.Bool

	// Receive side, used by one goroutine at a time.
	buf    []byte
	n      int // the length of the message in buf
	prio   uint32
	readFn func(int) error

	// Send side.
	msg     []byte
	sprio   uint32
	esc     []byte // an escaped value's body (see queueEOS)
	writeFn func(int) error

	closeOnce sync.Once
	closeErr  error
}

func newPosixMQ(fd int, desc string, cfg *transport.Config) (*posixMQ, error) {
	err := checkMarkerless("open", desc, cfg)
	if err == nil && cfg.Handshake(false) {
		// The hello's tag is no priority: it could never be sent.
		err = &ipcchan.OpError{Op: "open", Endpoint: desc, Err: fmt.Errorf("%w: %s(true): %w", ipcchan.ErrOption, transport.OptHandshake, (*posixMQ)(nil).checkTag(transport.HandshakeTag))}
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	st, err := mqStats(fd)
	if err != nil {
		unix.Close(fd)
		return nil, opErr("open", desc, err)
	}
	pfd, err := poller.Open(fd, desc)
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	q := &posixMQ{
		fd: pfd, desc: desc, msgSize: st.MsgSize, linger: cfg.Linger(), raw: cfg.ForeignPeer(),
	}
	q.coreReceiver = newCoreReceiver(q, cfg)
	q.readFn, q.writeFn = q.read, q.write
	return q, nil
}

func (q *posixMQ) String() string { return q.desc }

// MaxMsgSize is the queue's message size.
func (q *posixMQ) MaxMsgSize() int { return q.msgSize }

func (q *posixMQ) write(fd int) error { return sys.MqTimedsend(fd, q.msg, q.sprio, nil) }

func (q *posixMQ) read(fd int) error {
	if q.buf == nil {
		q.buf = make([]byte, q.msgSize)
	}
	n, prio, err := sys.MqTimedreceive(fd, q.buf, nil)
	q.n, q.prio = n, prio
	return err
}

// checkTag refuses a priority above the queue's.
func (q *posixMQ) checkTag(tag uint32) error {
	if tag >= sys.MqPrioMax {
		return fmt.Errorf("%w: priority %d, POSIX queues take 0 to %d", ErrReservedTag, tag, sys.MqPrioMax-1)
	}
	return nil
}

// prepare checks a message and sets it up for write: as it is, or escaped
// (see queueEOS) if it begins like the end-of-stream marker.
func (q *posixMQ) prepare(tag uint32, msg []byte) error {
	if err := q.checkTag(tag); err != nil {
		return err
	}
	if len(msg) > q.msgSize {
		return fmt.Errorf("%w: %d bytes, the queue's message size is %d", ipcchan.ErrMessageTooLarge, len(msg), q.msgSize)
	}
	if !q.raw && queueNeedsEscape(msg) {
		var err error
		if q.esc, err = appendQueueValue(q.esc[:0], msg, q.msgSize); err != nil {
			return err
		}
		msg = q.esc
	}
	q.msg, q.sprio = msg, tag
	return nil
}

func (q *posixMQ) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	if err := q.prepare(tag, msg); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		q.msg = nil
		return err
	}
	err := q.fd.Write(ctx, q.writeFn)
	q.msg = nil
	return transportErr("send", err)
}

func (q *posixMQ) TrySendMsg(tag uint32, msg []byte) error {
	if err := q.prepare(tag, msg); err != nil {
		return err
	}
	err := q.fd.TryWrite(q.writeFn)
	q.msg = nil
	if err == unix.EAGAIN {
		return ipcchan.ErrWouldBlock
	}
	return transportErr("send", err)
}

// take receives the next message (see msgSource): a marker is a body of
// exactly the marker at priority 0.
func (q *posixMQ) take(ctx context.Context, block bool) (rawMsg, error) {
	err := pollRead(ctx, q.fd, block, q.readFn)
	if err != nil {
		return rawMsg{}, err
	}
	m := rawMsg{tag: q.prio, body: q.buf[:q.n]}
	if !q.raw {
		var eos bool
		if m.body, eos = queueBody(m.body); eos && q.prio == 0 {
			m.kind = msgMarker
		}
	}
	return m, nil
}

// SyscallConn lets ipcchan.Select wait on the queue.
func (q *posixMQ) SyscallConn() (syscall.RawConn, error) { return rawConn{q.fd}, nil }

// File returns a duplicate of the queue descriptor for another process.
func (q *posixMQ) File() (*os.File, error) { return dupFile(q.fd) }

func (q *posixMQ) setHandedOff() { q.handedOff.Store(true) }

// Fail makes waits return err once queued messages are taken.
func (q *posixMQ) Fail(err error) { q.fd.Fail(err) }

// Close closes the queue descriptor. A sender's end first makes a Send
// blocked on a full queue return an error wrapping os.ErrClosed, having
// sent nothing, waits for a Send in progress to finish, and then posts the
// end-of-stream marker after everything its Sends committed, waiting up to
// the linger time for room.
func (q *posixMQ) Close() error {
	q.closeOnce.Do(func() {
		q.fd.StopWrites()
		// No marker where another process will post its own, where the
		// queue is too small, or where the receiver is known to be gone.
		if q.sending && !q.raw && !q.handedOff.Load() && q.msgSize >= len(queueEOS) && q.fd.Failure() == nil {
			q.closeErr = postEOS(q.linger, func() error {
				var err error = unix.EBADF
				q.fd.Control(func(fd int) { err = sys.MqTimedsend(fd, []byte(queueEOS), 0, nil) })
				return err
			})
		}
		q.closeErr = errors.Join(q.closeErr, q.fd.Close())
	})
	return q.closeErr
}

// readSysctl reads an integer under /proc/sys, or returns def.
func readSysctl(name string, def int) int {
	b, err := os.ReadFile("/proc/sys/" + name)
	if err != nil {
		return def
	}
	var v int
	if _, err := fmt.Sscan(string(b), &v); err != nil {
		return def
	}
	return v
}
