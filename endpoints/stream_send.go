package endpoints

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// coalesceWindow: a frame sent within this time of the previous write,
// while the reader has not yet read that one, is part of a burst and is
// queued for the flusher, so that a burst leaves in a few large writes. Any
// other frame goes straight to the kernel, so that request/reply traffic
// pays no extra hop.
const coalesceWindow = time.Microsecond

// coalesceMax is the largest frame a burst queues: a larger one costs more
// to copy than its write call does, and goes straight to the kernel.
const coalesceMax = 2048

// pipeBuf is PIPE_BUF on Linux: writes of at most this many bytes to a pipe
// or FIFO are atomic.
const pipeBuf = 4096

// alignMin is the smallest payload a sender writes to a pipe or FIFO in
// page-aligned pieces (see pageCut).
const alignMin = 32 << 10

// pageSize is the size of the pages a pipe keeps its bytes in.
var pageSize = os.Getpagesize()

// maxPipeGrow is the most a sender grows a pipe to (see growPipe): four
// times the default, so that a program with many pipes does not use up its
// user's share of pipe pages (/proc/sys/fs/pipe-user-pages-soft, past which
// the kernel gives every new pipe of the user 2 pages).
const maxPipeGrow = 256 << 10

// streamSender writes frames (codec's wire format) to a byte stream. It
// implements transport.MsgSender.
//
// A frame goes straight to the kernel when it can. When the kernel buffer is
// full, up to limit bytes of frames are kept in pending and a flusher
// goroutine, which exists only while there is something to flush, writes
// them out in large writes as the reader drains the stream. A frame is never
// left half-written: once its first byte is in the kernel, the rest is
// queued even past limit or a cancelled context.
type streamSender struct {
	fd      *poller.FD
	desc    string
	kind    streamKind
	framing codec.Framing
	raw     bool // framing is not codec.Frames: records are built whole in rec
	max     int
	atomic  bool // keep every frame within one write of at most pipeBuf bytes
	limit   int
	linger  time.Duration

	mu        sync.Mutex
	pending   []byte        // frames accepted but not yet taken by the flusher
	spare     []byte        // the flusher's previous batch, reused for pending
	flushing  bool          // a flusher goroutine owns the descriptor's write side
	progress  chan struct{} // closed and replaced whenever the flusher takes a batch or exits
	err       error         // sticky write error
	closed    bool
	lastWrite time.Time // when the last write to the kernel ended
	// direct: a Send owns the write side and waits for room without mu;
	// Close interrupts it through stopDirect and waits for it.
	direct     bool
	closing    context.Context
	stopDirect context.CancelFunc
	// handedOff: the descriptor now belongs to another process too, so
	// Close must not shut the socket down.
	handedOff bool

	// The direct write in progress; used only by the goroutine that owns
	// the write side while flushing is false.
	hdr     [codec.HeaderSize]byte
	rec     []byte // the record being sent, under a raw framing
	frame   [2][]byte
	written int
	writeFn func(int) error
	rights  []byte // SCM_RIGHTS to attach to the frame's first byte

	unixRights bool // a Unix socket: frames can carry descriptors
	pages      bool // a pipe or FIFO taking frames in one piece or more: see pageCut

	// A pipe's or FIFO's capacity (F_GETPIPE_SZ; 0 for a socket), and the
	// longest record it was grown for (see growPipe). Used only by the
	// goroutine sending.
	pipeCap  int
	grownFor int
}

func newStreamSender(fd *poller.FD, desc string, cfg *transport.Config, kind streamKind) (*streamSender, error) {
	framing, err := streamFraming(cfg)
	if err != nil {
		return nil, err
	}
	s := &streamSender{
		fd:       fd,
		desc:     desc,
		kind:     kind,
		framing:  framing,
		raw:      framing != codec.Frames,
		max:      min(cfg.MaxMessageSize(), framing.MaxPayload()),
		atomic:   cfg.AtomicWrites(kind.atomicWrites),
		limit:    cfg.SendBuffer(),
		linger:   cfg.Linger(),
		progress: make(chan struct{}),
	}
	if n := framing.RecordLen(s.max); s.atomic && (n > pipeBuf || n < 0) { // n < 0: overflowed (math.MaxInt)
		if framing.RecordLen(0) > pipeBuf {
			return nil, fmt.Errorf("%w: %s: %s records exceed PIPE_BUF (%d), the most a write shared by several writers keeps whole; turn off atomic writes (%s(false)) if this end has one writer: %w",
				ipcchan.ErrOption, transport.OptFraming, framing, pipeBuf, transport.OptAtomicWrites, ipcchan.ErrMessageTooLarge)
		}
		s.max = pipeBuf - framing.RecordLen(0) // framings other than fixed add a constant
	}
	if _, ok := framing.(codec.ReadFraming); ok {
		// Each record is one write of its own: none waits in pending to
		// be joined to the next in one write.
		s.limit = 0
	}
	s.writeFn = s.writeFrame
	s.pages = !kind.socket && !s.raw
	if !kind.socket {
		fd.Control(func(fd int) {
			if n, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0); err == nil {
				s.pipeCap = n
			}
		})
	}
	s.closing, s.stopDirect = context.WithCancel(context.Background())
	if kind.socket {
		fd.Control(func(fd int) { s.unixRights = isUnixSocket(fd) })
	}
	return s, nil
}

// streamFraming returns the framing cfg asks for, refusing the options an
// untagged framing cannot honour: a tag, the hello (a tagged frame), files
// (which a tag announces).
func streamFraming(cfg *transport.Config) (codec.Framing, error) {
	f := cfg.Framing()
	switch {
	case f.Tagged():
		return f, nil
	case cfg.Tag() != 0:
		return nil, fmt.Errorf("%w: %s(%d): %s records carry no tag: %w", ipcchan.ErrOption, transport.OptTag, cfg.Tag(), f, ErrReservedTag)
	case cfg.Given(transport.OptHandshake) && cfg.Handshake(false):
		return nil, fmt.Errorf("%w: %s(true): %s records carry no tag, so no hello", ipcchan.ErrOption, transport.OptHandshake, f)
	case cfg.Given(transport.OptRecvFiles):
		return nil, fmt.Errorf("%w: %s: %s records carry no tag, so no files", ipcchan.ErrOption, transport.OptRecvFiles, f)
	}
	// Records that no limit lets through (fixed ones longer than
	// WithMaxMessageSize) would end the stream at the first receive.
	if _, _, _, _, err := f.Split(nil, min(cfg.MaxMessageSize(), f.MaxPayload())); err != nil {
		return nil, fmt.Errorf("%w: %s with %s(%d): %w", ipcchan.ErrOption, transport.OptFraming, transport.OptMaxMessageSize, cfg.MaxMessageSize(), err)
	}
	return f, nil
}

// checkTag refuses the tags that mark attached files on a Unix socket.
func (s *streamSender) checkTag(tag uint32) error {
	if s.unixRights && tag&filesFlag != 0 {
		return fmt.Errorf("%w: tags from 0x80000000 up mark attached files on Unix sockets", ErrReservedTag)
	}
	return nil
}

func (s *streamSender) String() string  { return s.desc }
func (s *streamSender) MaxMsgSize() int { return s.max }

func (s *streamSender) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	return s.send(ctx, tag, msg, true)
}

func (s *streamSender) TrySendMsg(tag uint32, msg []byte) error {
	return s.send(context.Background(), tag, msg, false)
}

func (s *streamSender) send(ctx context.Context, tag uint32, msg []byte, block bool) error {
	if len(msg) > s.max {
		if s.atomic {
			return fmt.Errorf("%w: a %d-byte frame exceeds PIPE_BUF (%d), the most a write shared by several writers keeps whole; turn off atomic writes if this end has one writer",
				ipcchan.ErrMessageTooLarge, s.framing.RecordLen(len(msg)), pipeBuf)
		}
		return fmt.Errorf("%w: %d bytes, limit %d", ipcchan.ErrMessageTooLarge, len(msg), s.max)
	}
	if err := s.checkTag(tag); err != nil {
		return err
	}
	size := codec.HeaderSize + len(msg)
	if s.raw {
		// The record is built whole before anything is written: a payload
		// the framing refuses costs nothing. Only this goroutine uses rec.
		rec, err := s.framing.AppendRecord(s.rec[:0], tag, msg)
		if err != nil {
			return err
		}
		s.rec, size = rec, len(rec)
	}
	if size > s.pipeCap && s.pipeCap > 0 && size > s.grownFor {
		s.growPipe(size)
	}
	s.mu.Lock()
	for {
		switch {
		case s.unusable() != nil:
			err := s.unusable()
			s.mu.Unlock()
			return err
		case !s.flushing && size <= coalesceMax && size <= s.limit &&
			time.Since(s.lastWrite) < coalesceWindow && s.readerBehind():
			// A burst: the previous frame left a moment ago and the reader
			// has not taken it yet, so it cannot be waiting for this one
			// either. Queue it, and let the flusher send the burst in large
			// writes.
			s.pending = s.appendRecord(s.pending, tag, msg)
			s.startFlusher()
			s.mu.Unlock()
			return nil
		case !s.flushing:
			return s.sendDirect(ctx, tag, msg, block) // unlocks s.mu
		case len(s.pending)+size <= s.limit:
			s.pending = s.appendRecord(s.pending, tag, msg)
			s.mu.Unlock()
			return nil
		case !block:
			s.mu.Unlock()
			return ipcchan.ErrWouldBlock
		}
		if err := s.waitProgress(ctx); err != nil {
			return err
		}
	}
}

// growPipe asks the kernel for a pipe that holds two records of size bytes,
// and a page more for the header written on its own (see pageCut), at
// most maxPipeGrow. A record longer than the pipe cannot all be written
// until the reader has taken some of it: each such record costs a wait for
// the reader part-way through, and a wake-up on each side; with room for
// two, the next record goes in while the reader takes this one. The kernel
// rounds the capacity up to a power of two pages, and may refuse it (to an
// unprivileged user past /proc/sys/fs/pipe-user-pages-soft): the pipe then
// stays as it is, and a record of this size does not ask again. A pipe is
// never shrunk.
func (s *streamSender) growPipe(size int) {
	s.grownFor = size
	want := maxPipeGrow
	if size < (maxPipeGrow-pageSize)/2 { // and 2*size cannot overflow
		want = 2*size + pageSize
	}
	if want <= s.pipeCap {
		return
	}
	s.fd.Control(func(fd int) {
		if n, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, want); err == nil {
			s.pipeCap = n
		}
	})
}

// appendRecord appends the record of msg to dst: the one send built under
// a raw framing, else a frame.
func (s *streamSender) appendRecord(dst []byte, tag uint32, msg []byte) []byte {
	if s.raw {
		return append(dst, s.rec...)
	}
	return codec.AppendFrame(dst, tag, msg)
}

// waitProgress waits until the flusher makes progress or ctx ends. It is
// called with s.mu held and returns with it held, except on error.
func (s *streamSender) waitProgress(ctx context.Context) error {
	progress := s.progress
	s.mu.Unlock()
	select {
	case <-progress:
		s.mu.Lock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sendDirect writes a frame while no flusher runs. It is called with s.mu
// held and unlocks it.
func (s *streamSender) sendDirect(ctx context.Context, tag uint32, msg []byte, block bool) error {
	if s.raw {
		s.frame = [2][]byte{s.rec, nil}
	} else {
		codec.PutHeader(s.hdr[:], len(msg), tag)
		s.frame = [2][]byte{s.hdr[:], msg}
	}
	s.written = 0
	defer func() { s.frame = [2][]byte{} }()
	size := len(s.frame[0]) + len(s.frame[1])

	err := s.fd.TryWrite(s.writeFn)
	if err == nil {
		s.lastWrite = time.Now()
	}
	if err == unix.EAGAIN && size <= s.limit && s.rights == nil {
		err = s.queueRest() // buffered: Send returns, the flusher writes it
	}
	if err == unix.EAGAIN && !block {
		if s.written == 0 {
			s.mu.Unlock()
			return ipcchan.ErrWouldBlock
		}
		err = s.queueRest()
	}
	if err == unix.EAGAIN {
		err = s.waitDirect(ctx)
	}
	switch err {
	case nil, context.Canceled, context.DeadlineExceeded, ipcchan.ErrWouldBlock, os.ErrClosed:
		// os.ErrClosed: Close woke the wait; what is pending still goes.
	default:
		err = s.fail(err)
	}
	s.mu.Unlock()
	return err
}

// waitDirect waits for room to write the rest of the current frame without
// holding mu, so that Close can get in. A frame cut short by ctx or by
// Close is never left half-written: what has reached the kernel is
// completed from pending, and the Send counts as done (nil). A frame none
// of which reached the kernel when Close came is not sent: os.ErrClosed.
// It is called, and returns, with s.mu held.
func (s *streamSender) waitDirect(ctx context.Context) error {
	wctx, release := s.closeAware(ctx)
	s.direct = true
	s.mu.Unlock()
	err := s.fd.Write(wctx, s.writeFn)
	release()
	s.mu.Lock()
	s.direct = false
	if s.closed {
		s.signal() // Close waits for this Send to let go
	}
	if err != context.Canceled && err != context.DeadlineExceeded {
		return err
	}
	switch {
	case s.written > 0:
		return s.queueRest()
	case ctx.Err() == nil: // Close, not the caller, ended the wait
		return os.ErrClosed
	}
	return ctx.Err()
}

// closeAware returns a context that ends with ctx or when Close begins,
// and the function that releases it. It allocates only for a ctx that can
// end.
func (s *streamSender) closeAware(ctx context.Context) (context.Context, func()) {
	if ctx.Done() == nil {
		return s.closing, func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	return wctx, func() { stop(); cancel() }
}

// writeFrame writes what is left of the current frame; it returns EAGAIN
// until the whole frame is written.
func (s *streamSender) writeFrame(fd int) error {
	for {
		if s.rights != nil {
			if err := s.writeWithRights(fd); err != nil {
				return err
			}
			continue
		}
		hdr, body := s.frame[0], s.frame[1]
		if s.written < len(hdr) {
			hdr = hdr[s.written:]
		} else {
			body = body[s.written-len(hdr):]
			hdr = nil
		}
		if len(hdr)+len(body) == 0 {
			return nil
		}
		if s.pages && len(s.frame[1]) >= alignMin {
			body = pageCut(body, hdr != nil)
		}
		n, err := sys.Writev2(fd, hdr, body)
		if err != nil {
			return err
		}
		s.written += n
	}
}

// pageCut returns the part of p, what is left of a large payload, that the
// next write to a pipe takes: with the header (withHeader) or from an
// address inside a page, up to p's next page boundary (so the header alone
// if p starts on one); from a page boundary, as many whole pages as p
// holds; then the rest.
//
// A pipe keeps what is written in pages and copies a write into them page
// by page, so one write of the header and a page-aligned payload puts each
// byte of the payload 8 bytes further into its page than it is in memory.
// On the AMD EPYC machines this project is measured on, the kernel's copy
// (rep movsb) runs about five times slower when its destination is 1 to 15
// bytes past its source modulo 4096: 26 µs instead of 6 for 64 KiB. Cut
// this way, each write of whole pages starts on a page boundary in memory,
// and the pipe, which merges only a write's first len%4096 bytes into its
// last page, gives it fresh pages: they mirror the payload's alignment in
// memory, and a receiver reading them into memory aligned like the
// sender's copies them at full speed too. Two more writes per large frame
// are a small price for that.
func pageCut(p []byte, withHeader bool) []byte {
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(p)))) & (pageSize - 1)
	switch {
	case off != 0 || withHeader:
		return p[:min(len(p), (pageSize-off)&(pageSize-1))]
	case len(p) >= pageSize:
		return p[:len(p)&^(pageSize-1)]
	}
	return p
}

// readerBehind reports whether bytes written earlier are still unread in
// the kernel. It is called with s.mu held, while no flusher runs.
func (s *streamSender) readerBehind() bool { return s.fd.Queued(s.kind.queuedIoctl()) > 0 }

// queueRest moves the unwritten part of the current frame to pending and
// starts the flusher. It is called with s.mu held.
func (s *streamSender) queueRest() error {
	size := len(s.frame[0]) + len(s.frame[1])
	for i := s.written; i < size; {
		part := s.frame[0]
		off := i
		if i >= len(part) {
			part, off = s.frame[1], i-len(part)
		}
		s.pending = append(s.pending, part[off:]...)
		i += len(part) - off
	}
	s.startFlusher()
	return nil
}

// startFlusher hands the write side to a new flusher goroutine. Called with
// s.mu held.
func (s *streamSender) startFlusher() {
	s.flushing = true
	go s.flush()
}

// flush writes pending out until it is empty, then gives the write side back.
func (s *streamSender) flush() {
	for {
		s.mu.Lock()
		if len(s.pending) == 0 || s.err != nil {
			s.flushing = false
			s.pending = s.pending[:0]
			s.signal()
			s.mu.Unlock()
			return
		}
		batch := s.pending
		s.pending = s.spare[:0]
		s.signal()
		s.mu.Unlock()

		err := s.writeBatch(batch)

		s.mu.Lock()
		s.spare = batch[:0]
		s.lastWrite = time.Now()
		if err != nil {
			s.fail(err)
		}
		s.mu.Unlock()
	}
}

// signal wakes goroutines waiting for the flusher. Called with s.mu held.
func (s *streamSender) signal() {
	close(s.progress)
	s.progress = make(chan struct{})
}

// writeBatch writes whole frames from batch, waiting for room as needed. In
// atomic mode each write holds whole frames and at most pipeBuf bytes.
func (s *streamSender) writeBatch(batch []byte) error {
	for len(batch) > 0 {
		chunk := batch
		if s.atomic {
			chunk = atomicChunk(s.framing, batch)
		}
		var n int
		err := s.fd.Write(context.Background(), func(fd int) error {
			for n < len(chunk) {
				m, err := unix.Write(fd, chunk[n:])
				if err != nil {
					return err
				}
				n += m
			}
			return nil
		})
		if err != nil {
			return err
		}
		batch = batch[len(chunk):]
	}
	return nil
}

// atomicChunk returns the longest prefix of batch that holds whole records
// and at most pipeBuf bytes (always at least one record).
func atomicChunk(f codec.Framing, batch []byte) []byte {
	n := 0
	for n < len(batch) {
		_, _, size, _, err := f.Split(batch[n:], math.MaxInt)
		if err != nil || size == 0 {
			return batch // cannot happen: batch holds records this side built
		}
		if n+size > pipeBuf && n > 0 {
			break
		}
		n += size
	}
	return batch[:n]
}

// fail records a write error: later sends report it. Called with s.mu held.
func (s *streamSender) fail(err error) error {
	if s.closed {
		err = os.ErrClosed // Close shut a socket down under a blocked write
	}
	if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
		err = fmt.Errorf("%w: no reader left (%w)", ipcchan.ErrPeerGone, err)
	} else if !errors.Is(err, os.ErrClosed) {
		err = fmt.Errorf("write: %w", err)
	}
	if s.err == nil {
		s.err = err
	}
	s.pending = s.pending[:0]
	return s.err
}

// Flush waits until the flusher has written everything pending.
func (s *streamSender) Flush(ctx context.Context) error {
	s.mu.Lock()
	for s.flushing {
		if err := s.waitProgress(ctx); err != nil {
			return err
		}
	}
	err := s.err
	s.mu.Unlock()
	return err
}

// Close flushes pending frames for at most the linger time, then closes the
// descriptor; a flusher still waiting then gives up. A Send waiting for room
// is woken first: it completes a frame it has begun (which then counts as
// sent and is flushed with the rest) and otherwise returns os.ErrClosed.
func (s *streamSender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.stopDirect()
	for s.direct {
		s.waitProgress(context.Background())
	}
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), s.linger)
	flushErr := s.Flush(ctx)
	cancel()
	if s.kind.shutdown && !s.handedOff {
		// The peer sees end of stream even while a duplicate of this
		// socket (the receiving half, a child's copy) stays open.
		s.fd.Control(func(fd int) { unix.Shutdown(fd, unix.SHUT_WR) })
	}
	closeErr := s.fd.Close()
	// A flusher cut off by the close exits now; wait for it.
	s.Flush(context.Background())
	if flushErr == context.DeadlineExceeded {
		return fmt.Errorf("close: frames still unsent after lingering %v were dropped", s.linger)
	}
	if flushErr != nil && !errors.Is(flushErr, ipcchan.ErrPeerGone) {
		return flushErr
	}
	return closeErr
}

// setHandedOff marks the descriptor as held by another process too: Close
// then does not shut a socket down.
func (s *streamSender) setHandedOff() {
	s.mu.Lock()
	s.handedOff = true
	s.mu.Unlock()
}

// File returns a duplicate of the descriptor for another process. Frames
// still pending in this process are not part of it: Flush first.
func (s *streamSender) File() (*os.File, error) { return dupFile(s.fd) }

// Fail makes waits for room return err; see transport.Failer.
func (s *streamSender) Fail(err error) { s.fd.Fail(err) }

// HandshakeByDefault reports that the stream sends a hello unless its
// framing is another program's (see transport.HandshakeDefaulter).
func (s *streamSender) HandshakeByDefault() bool { return s.framing.Tagged() }

// unusable returns why no frame may be sent: os.ErrClosed after Close, or
// the write error that broke the stream; nil if one may. The caller holds
// s.mu.
func (s *streamSender) unusable() error {
	if s.closed {
		return os.ErrClosed
	}
	return s.err
}

// SyscallConn lets ipcchan.Select wait for room on the descriptor.
func (s *streamSender) SyscallConn() (syscall.RawConn, error) { return rawConn{s.fd}, nil }
