package endpoints

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
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

// Datagram format: every message is one datagram (or one seqpacket record):
// a big-endian uint32 tag, then the payload. On connectionless sockets a
// sender's Close sends an end-of-stream marker, a datagram holding only the
// tag eosTag; application messages cannot use that tag.
const (
	dgramHeader = 4
	eosTag      = 0xFFFF_FFFF
)

// headerOf is the size of the tag word before a datagram's payload.
func headerOf(raw bool) int {
	if raw {
		return 0
	}
	return dgramHeader
}

// dgramKind says how a message socket ends its stream.
type dgramKind struct {
	name   string
	marker bool // connectionless: end of stream is a marker datagram
	lossy  bool // UDP
}

var (
	unixgramKind   = dgramKind{name: "unixgram", marker: true}
	unixpacketKind = dgramKind{name: "unixpacket"}
	udpKind        = dgramKind{name: "udp", marker: true, lossy: true}
)

// dgramSender sends one message per datagram on a connected socket. It
// implements transport.MsgSender.
type dgramSender struct {
	fd      *poller.FD
	desc    string
	kind    dgramKind
	raw     bool // exactly the payload: no tag word, no marker
	max     int
	linger  time.Duration
	out     []byte
	writeFn func(int) error

	mu        sync.Mutex
	handedOff bool
	closed    bool
	// noShutdown: other processes may hold this seqpacket socket too
	// (it was inherited), so Close must not shut it down under them.
	noShutdown bool
}

func newDgramSender(fd *poller.FD, desc string, kind dgramKind, cfg *transport.Config) *dgramSender {
	s := &dgramSender{fd: fd, desc: desc, kind: kind, linger: cfg.Linger(), raw: cfg.ForeignPeer()}
	s.max = min(cfg.MaxMessageSize(), maxDatagram(fd, kind)-headerOf(s.raw))
	s.writeFn = s.write
	return s
}

// maxDatagram is the largest datagram the socket can send.
func maxDatagram(fd *poller.FD, kind dgramKind) int {
	if kind.name == "udp" {
		return 65507 // IPv4's limit; IPv6 allows a few bytes more
	}
	n := 0
	fd.Control(func(fd int) { n, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF) })
	// The kernel refuses a Unix datagram longer than its send buffer less
	// a little bookkeeping.
	return max(n-64, 1024)
}

func (s *dgramSender) String() string  { return s.desc }
func (s *dgramSender) MaxMsgSize() int { return s.max }

func (s *dgramSender) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	if err := s.prepare(tag, msg); err != nil {
		return err
	}
	return s.mapErr(s.fd.Write(ctx, s.writeFn))
}

func (s *dgramSender) TrySendMsg(tag uint32, msg []byte) error {
	if err := s.prepare(tag, msg); err != nil {
		return err
	}
	err := s.fd.TryWrite(s.writeFn)
	if err == unix.EAGAIN {
		return ipcchan.ErrWouldBlock
	}
	return s.mapErr(err)
}

func (s *dgramSender) prepare(tag uint32, msg []byte) error {
	if len(msg) > s.max {
		return fmt.Errorf("%w: %d bytes, a %s datagram carries at most %d", ipcchan.ErrMessageTooLarge, len(msg), s.kind.name, s.max)
	}
	if err := s.checkTag(tag); err != nil {
		return err
	}
	if s.raw {
		s.out = append(s.out[:0], msg...)
		return nil
	}
	s.out = binary.BigEndian.AppendUint32(s.out[:0], tag)
	s.out = append(s.out, msg...)
	return nil
}

// checkTag refuses a tag on a foreign peer's datagrams, which have none,
// and the end-of-stream marker's tag on a connectionless socket.
func (s *dgramSender) checkTag(tag uint32) error {
	switch {
	case s.raw && tag != 0:
		return fmt.Errorf("%w: a foreign peer's datagrams carry no tag (got %d)", ErrReservedTag, tag)
	case !s.raw && tag == eosTag && s.kind.marker:
		return fmt.Errorf("%w: 0xFFFFFFFF marks end of stream on datagram sockets", ErrReservedTag)
	}
	return nil
}

// write sends s.out as one datagram: whole or not at all.
func (s *dgramSender) write(fd int) error {
	_, err := unix.Write(fd, s.out)
	return err
}

func (s *dgramSender) mapErr(err error) error {
	switch {
	case err == nil, err == context.Canceled, err == context.DeadlineExceeded:
		return err
	case s.isClosed():
		return os.ErrClosed // Close shut the socket down under a blocked Send
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.EPIPE), errors.Is(err, unix.ENOTCONN), errors.Is(err, unix.ECONNRESET):
		return fmt.Errorf("%w: %w", ipcchan.ErrPeerGone, err)
	case errors.Is(err, unix.EMSGSIZE):
		return fmt.Errorf("%w: %w", ipcchan.ErrMessageTooLarge, err)
	}
	return err
}

// Close makes a Send blocked on a full receiver return an error wrapping
// os.ErrClosed (it has sent nothing), waits for a Send in progress, and
// then sends the end-of-stream marker on a connectionless socket (retrying
// for at most the linger time while the receiver's queue is full) and
// closes the socket; a seqpacket socket is shut down for writing, which the
// peer sees as end of stream.
func (s *dgramSender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	handedOff := s.handedOff
	s.mu.Unlock()
	// A Send blocked on a full receiver returns os.ErrClosed having sent
	// nothing; one in progress finishes first, before the marker.
	s.fd.StopWrites()
	var err error
	switch {
	case handedOff:
	case s.kind.marker && s.raw: // a raw peer would take the marker for a message
	case s.kind.marker:
		err = s.sendMarker()
	case !s.noShutdown:
		s.fd.Control(func(fd int) { unix.Shutdown(fd, unix.SHUT_WR) })
	}
	return errors.Join(err, s.fd.Close())
}

func (s *dgramSender) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// sendMarker sends the end-of-stream marker. It goes around the poller,
// which a Send blocked at the same moment may be using.
func (s *dgramSender) sendMarker() error {
	marker := binary.BigEndian.AppendUint32(nil, eosTag)
	deadline := time.Now().Add(s.linger)
	for {
		var err error
		s.fd.Control(func(fd int) { _, err = unix.Write(fd, marker) })
		switch {
		case err == nil, errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.ENOTCONN), errors.Is(err, unix.EPIPE):
			return nil // sent, or nobody is left to tell
		case err != unix.EAGAIN:
			return fmt.Errorf("send end-of-stream marker: %w", err)
		case time.Now().After(deadline):
			return fmt.Errorf("close: the receiver's queue stayed full for %v; end-of-stream marker not sent", s.linger)
		}
		time.Sleep(time.Millisecond)
	}
}

// setHandedOff marks the socket as held by another process too: Close
// then neither sends a marker nor shuts it down.
func (s *dgramSender) setHandedOff() {
	s.mu.Lock()
	s.handedOff = true
	s.mu.Unlock()
}

// File returns a duplicate of the socket for another process.
func (s *dgramSender) File() (*os.File, error) { return dupFile(s.fd) }

// dgramReceiver receives one message per datagram. It implements
// transport.MsgReceiver.
type dgramReceiver struct {
	coreReceiver[*dgramReceiver] // RecvMsg and TryRecvMsg, by the core's rules
	inBuffer                     // a message is delivered from buf

	fd     *poller.FD
	desc   string
	kind   dgramKind
	path   *unixPath // the socket file ListenPacket made, removed on Close
	hdr    int       // the tag word's size: 0 for raw datagrams
	buf    []byte
	n      int // the length of the datagram in buf (more than len(buf) if cut)
	readFn func(int) error

	// A seqpacket record may be empty, and a read of it returns 0 as the
	// peer's hang-up does: record says the read took a record. A raw
	// receiver, for which empty values are ordinary, tells them apart
	// exactly: its socket has SO_PASSCRED, which puts the sender's
	// credentials on every record, into oob, and a read of 0 bytes without
	// them is the hang-up. Others ask the kernel afterwards (emptyRecord).
	record bool
	oob    []byte
	oobn   int

	// check, if set, vets the sender of every unixgram datagram by the
	// credentials the kernel puts on it (SO_PASSCRED, read into oob): a
	// datagram it refuses, or that comes without credentials, is dropped
	// unread and counted in refused.
	check   func(ipcchan.PeerCred) error
	refused atomic.Uint64
}

func newDgramReceiver(fd *poller.FD, desc string, kind dgramKind, cfg *transport.Config) *dgramReceiver {
	r := &dgramReceiver{fd: fd, desc: desc, kind: kind, hdr: headerOf(cfg.ForeignPeer())}
	r.coreReceiver = newCoreReceiver(r, cfg)
	size := min(cfg.MaxMessageSize(), maxDatagram(fd, kind)) + r.hdr
	if kind.name == "udp" {
		size = 65536
	}
	r.buf = make([]byte, size)
	r.readFn = r.read
	if kind == unixpacketKind && cfg.ForeignPeer() {
		var err error = unix.EBADF
		fd.Control(func(fd int) { err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
		if err == nil {
			r.oob = make([]byte, unix.CmsgSpace(unix.SizeofUcred))
		}
	}
	return r
}

// checkSenders makes a unixgram receiver vet every datagram's sender with
// check, or with the default check if check is nil and the socket is bound
// to an abstract name (which has no permissions). It turns SO_PASSCRED on;
// ListenPacket has already done so before binding, so that every datagram
// carries its sender's credentials.
func (r *dgramReceiver) checkSenders(check func(ipcchan.PeerCred) error) error {
	if r.kind != unixgramKind {
		return nil
	}
	var err error = unix.EBADF
	r.fd.Control(func(fd int) {
		if check == nil && boundAbstract(fd) {
			check = defaultPeerCheck()
		}
		if check != nil {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		} else {
			err = nil
		}
	})
	if err != nil {
		return fmt.Errorf("SO_PASSCRED, which the peer check needs: %w", err)
	}
	if check != nil {
		r.check = check
		r.oob = make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	}
	return nil
}

// boundAbstract reports whether the socket fd is bound to an abstract
// name.
func boundAbstract(fd int) bool {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	u, ok := sa.(*unix.SockaddrUnix)
	return ok && isAbstract(u.Name)
}

// admit reports whether the last datagram read came with credentials that
// the check accepts.
func (r *dgramReceiver) admit() bool {
	uc, ok := sys.UcredOf(r.oob[:r.oobn])
	return ok && r.check(ipcchan.PeerCred{PID: int(uc.Pid), UID: int(uc.Uid), GID: int(uc.Gid)}) == nil
}

func (r *dgramReceiver) String() string { return r.desc }

func (r *dgramReceiver) read(fd int) error {
	if r.oob != nil {
		n, oobn, err := sys.RecvmsgTrunc(fd, r.buf, r.oob)
		r.n, r.oobn, r.record = n, oobn, oobn > 0
		return err
	}
	n, err := sys.RecvTrunc(fd, r.buf)
	r.n, r.record = n, false
	if err == nil && n == 0 && !r.kind.marker {
		r.record, err = emptyRecord(fd)
	}
	return err
}

// emptyRecord tells, after a read of 0 bytes on a seqpacket socket,
// whether it took an empty record rather than met the end of the stream.
// The kernel reports the end only once the peer has hung up and nothing is
// queued: so a peer that has not hung up sent an empty record, and so did
// one that left a non-empty record queued behind it. (Empty records with
// nothing but empty records behind them when the peer has hung up cannot
// be told from the end, and are taken for it.) An interrupted poll is
// retried, never taken for a hang-up.
func emptyRecord(fd int) (bool, error) {
	ev, err := sys.PollNow(fd, unix.POLLIN|unix.POLLRDHUP)
	if err != nil {
		return false, fmt.Errorf("poll: %w", err)
	}
	if ev&(unix.POLLRDHUP|unix.POLLHUP) == 0 {
		return true, nil
	}
	n, err := sys.PeekLen(fd)
	return err == nil && n > 0, nil
}

// take receives the next datagram or record (see msgSource): a marker is
// a datagram of the end-of-stream tag alone; one the peer check refuses is
// skipped; a seqpacket peer's hang-up ends the stream.
func (r *dgramReceiver) take(ctx context.Context, block bool) (rawMsg, error) {
	err := pollRead(ctx, r.fd, block, r.readFn)
	switch {
	case err == nil:
	case errors.Is(err, unix.ECONNRESET), errors.Is(err, unix.ECONNREFUSED):
		return rawMsg{}, endOf(fmt.Errorf("%w: %w", ipcchan.ErrPeerGone, err))
	default:
		return rawMsg{}, err
	}
	if r.check != nil && !r.admit() {
		r.refused.Add(1) // not delivered, never an end-of-stream marker
		return rawMsg{kind: msgSkip}, nil
	}
	n := r.n
	switch {
	case n == 0 && !r.kind.marker && !r.record:
		return rawMsg{}, endOf(io.EOF) // a seqpacket peer shut down or closed, nothing queued
	case n > len(r.buf):
		return rawMsg{}, fmt.Errorf("%w: a %d-byte datagram, limit %d (discarded)", ipcchan.ErrFrameTooLarge, n-r.hdr, len(r.buf)-r.hdr)
	case r.hdr == 0:
		return rawMsg{body: r.buf[:n]}, nil
	case n < dgramHeader:
		return rawMsg{}, fmt.Errorf("%w: a %d-byte datagram is shorter than its tag (discarded)", ipcchan.ErrDecode, n)
	}
	m := rawMsg{tag: binary.BigEndian.Uint32(r.buf), body: r.buf[dgramHeader:n]}
	if m.tag == eosTag && r.kind.marker && n == dgramHeader {
		m.kind = msgMarker
	}
	return m, nil
}

// RefusedDatagrams returns how many datagrams the peer check has dropped on
// rx, a unixgram Receiver made by ListenPacket or InheritReceiver:
// datagrams whose sender it refused, never delivered and never taken for
// an end-of-stream marker. It returns 0 for a Receiver on any other
// transport. It is safe for concurrent use.
func RefusedDatagrams[T any](rx *ipcchan.Receiver[T]) uint64 {
	if r, ok := rx.Transport().(*dgramReceiver); ok {
		return r.refused.Load()
	}
	return 0
}

// Close closes the socket and removes its socket file, if it made one.
func (r *dgramReceiver) Close() error {
	err := r.fd.Close()
	if r.path != nil {
		err = errors.Join(err, r.path.Close())
		r.path = nil
	}
	return err
}

// SyscallConn lets ipcchan.Select wait on the socket.
func (r *dgramReceiver) SyscallConn() (syscall.RawConn, error) { return rawConn{r.fd}, nil }

// File returns a duplicate of the socket for another process.
func (r *dgramReceiver) File() (*os.File, error) { return dupFile(r.fd) }

// Fail makes waits return err once queued datagrams are read; see
// transport.Failer (ipcchan's WatchPeer: datagrams have no kernel end).
func (r *dgramReceiver) Fail(err error) { r.fd.Fail(err) }

// Fail makes waits for room return err.
func (s *dgramSender) Fail(err error) { s.fd.Fail(err) }

// SyscallConn lets ipcchan.Select wait for room on the socket.
func (s *dgramSender) SyscallConn() (syscall.RawConn, error) { return rawConn{s.fd}, nil }
