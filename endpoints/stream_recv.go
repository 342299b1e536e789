package endpoints

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// readBufferSize is the usual size of a stream receiver's buffer: one read
// takes in this much, often many frames.
const readBufferSize = 64 << 10

// maxIdleBuffer is the largest buffer a stream receiver keeps once it is
// empty; a larger one, grown for a large frame, is released.
const maxIdleBuffer = 1 << 20

// roomMin is the smallest payload a stream receiver reads straight into
// the memory a receive offers (RecvMsgRoom) rather than through its
// buffer: below it, copying costs less than the reads the buffer's
// read-ahead saves (a read of readBufferSize takes in two frames of this
// size, or many smaller ones).
const roomMin = readBufferSize / 2

// streamReceiver reads frames (codec's wire format) from a byte stream: a
// pipe, a FIFO or a stream socket. It implements transport.MsgReceiver,
// transport.MsgSizeLimiter and transport.RoomReceiver.
//
// Bytes read from the kernel stay in buf until a whole frame is there, so a
// receive cancelled part-way through a frame loses nothing: the next one
// goes on where it stopped. buf grows with the bytes that have arrived,
// never with the length a header announces (see reserve). A large payload
// may instead be read into the memory a receive offers (see recvRoom),
// and what came of it goes back into buf if the receive ends first.
type streamReceiver struct {
	fd      *poller.FD
	desc    string
	max     int  // the configured limit on a frame's payload
	limit   int  // the limit in force: max, or lower until a hello (LimitMsgSize)
	fifo    bool // a read of 0 bytes before any writer came is not end of stream
	framing codec.Framing
	perRead int       // a codec.ReadFraming's size: each read, of at most this many bytes, is a record
	pad     bool      // pad each such record with zero bytes to perRead
	mem     *memShare // the listener's shared memory, for an accepted connection with a bound

	// A wait for the listener's memory (growMemory), for memWaitFn.
	mw struct {
		held, want, need int
		known            bool
		wake             context.CancelFunc
	}
	memWaitFn func(int) error

	buf     []byte // unread bytes are buf[r:w]
	r, w    int
	skip    uint64 // bytes of an oversized frame still to discard
	sticky  error  // end of stream or a read error, reported once buf is drained
	readFn  func(int) error
	readN   int
	readMax int // with files: read no further than the end of the frame at r (0: no bound)

	// A receive into the caller's memory (RecvMsgRoom, see recvRoom).
	roomOK  bool   // this receiver can: frames, no files, no shared memory, no record-per-read
	room    []byte // the memory offered by the receive in progress, or nil
	readTo  int    // where readSome puts what it reads: toBuf, toHead or toBody
	roomMax int    // toHead: the most bytes to read into room
	roomN   int    // toHead: the bytes read into room
	into    []byte // toBody: the payload being read, in room
	got     int    // toBody: the bytes of into read

	// Descriptors on a Unix socket (see stream_files.go). A frame's tag
	// says whether it carries some on any Unix socket; only a receiver
	// made with ipcchan.WithRecvFiles (maxFDs > 0) takes them.
	unixSock     bool
	maxFDs       int // descriptors kept ahead of the frames that claim them
	oob          []byte
	fdqMu        sync.Mutex // Close may run during a receive
	fdq          []int
	rightsErr    error
	deliverFiles func(uint32, []byte, []int) error
}

func newStreamReceiver(fd *poller.FD, desc string, cfg *transport.Config, fifo bool, framing codec.Framing, mem *connMemory) *streamReceiver {
	max := min(cfg.MaxMessageSize(), framing.MaxPayload()) // as the sender's
	s := &streamReceiver{fd: fd, desc: desc, max: max, limit: max, fifo: fifo, framing: framing}
	if rf, ok := framing.(codec.ReadFraming); ok {
		s.perRead, s.pad = rf.ReadSize()
	}
	if mem != nil {
		s.mem = mem.share()
		s.memWaitFn = s.memWaitStep
	}
	s.readFn = s.read
	fd.Control(func(fd int) { s.unixSock = isUnixSocket(fd) })
	if s.unixSock && cfg.RecvFiles() > 0 {
		s.maxFDs = cfg.RecvFiles()
		s.oob = make([]byte, unix.CmsgSpace(maxFiles*4))
	}
	s.roomOK = framing == codec.Frames && s.maxFDs == 0 && s.mem == nil
	return s
}

// LimitMsgSize refuses frames over n bytes until it is called again with
// n <= 0; see transport.MsgSizeLimiter. The handshake uses it to accept
// nothing longer than a hello before the hello.
func (s *streamReceiver) LimitMsgSize(n int) {
	if n <= 0 || n > s.max {
		n = s.max
	}
	s.limit = n
}

func (s *streamReceiver) String() string { return s.desc }

func (s *streamReceiver) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	return s.recv(ctx, true, deliver)
}

func (s *streamReceiver) TryRecvMsg(deliver func(uint32, []byte) error) error {
	return s.recv(context.Background(), false, deliver)
}

// RecvMsgRoom is RecvMsg that reads a frame of at least roomMin bytes that
// fits in room straight into it (see transport.RoomReceiver and recvRoom).
// A receiver that takes files, draws on a listener's memory or reads
// another framing receives as RecvMsg does.
func (s *streamReceiver) RecvMsgRoom(ctx context.Context, room []byte, deliver func(uint32, []byte) error) error {
	if !s.roomOK || len(room) < roomMin {
		return s.recv(ctx, true, deliver)
	}
	s.room = room
	err := s.recv(ctx, true, deliver)
	s.room = nil
	return err
}

func (s *streamReceiver) recv(ctx context.Context, block bool, deliver func(uint32, []byte) error) error {
	for {
		if s.skip > 0 {
			s.discard()
		}
		need, known := 1, false
		if s.skip == 0 && s.w > s.r {
			payload, tag, n, more, err := s.framing.Split(s.buf[s.r:s.w], s.limit)
			switch {
			case err != nil && n == 0:
				// The stream cannot be resynchronised: this is its end.
				s.r, s.w = 0, 0
				s.sticky = err
				return err
			case err != nil:
				s.drop(n)
				return err
			case n > 0:
				s.r += n
				if s.unixSock && tag&filesFlag != 0 {
					err = s.deliverWithFiles(tag, payload, deliver)
				} else {
					err = deliver(tag, payload)
				}
				s.release()
				return err
			}
			need, known = max(more, s.w-s.r+1), more > 0
		}
		if s.perRead > 0 {
			// Each read is a record: read only into an empty buffer, and
			// never more than one record's worth.
			need, known = s.perRead, true
			if s.w > s.r {
				return fmt.Errorf("%s: %d bytes left after a record read whole", s.desc, s.w-s.r) // cannot happen
			}
		}
		if s.sticky != nil {
			return s.end()
		}
		if s.room != nil && s.skip == 0 {
			switch next, err := s.recvRoom(ctx, block, deliver); next {
			case roomDone:
				return err
			case roomAgain:
				continue
			}
		}
		if err := s.reserve(ctx, block, need, known); err != nil {
			return err
		}
		s.readMax = 0
		if known {
			s.readMax = need - (s.w - s.r)
		}
		if err := s.fill(ctx, block); err != nil {
			return err
		}
	}
}

// What recvRoom leaves to recv.
const (
	roomNo    = iota // nothing done: read through buf
	roomAgain        // bytes were added to buf: look at them again
	roomDone         // the receive is over: return its error
)

// Where readSome reads.
const (
	toBuf  = iota // buf[w:]
	toHead        // the rest of the header at r into buf, what follows into room[:roomMax]
	toBody        // into[got:], the rest of a payload in room
)

// recvRoom receives the frame at r straight into s.room when that is worth
// it: it reads a payload of at least roomMin bytes into room rather than
// into buf, and the start of a frame whose header has not all arrived with
// one readv whose bytes after the header go to room. A frame that turns
// out not to fit in room, not to be one for room at all (over the limit,
// carrying files) or to be shorter than the bytes read leaves those bytes
// in buf, exactly as if they had been read there, and so does a receive
// that ends part-way through a payload (ctx, Close, the end of the stream):
// nothing is lost and the next receive goes on where this one stopped. The
// caller has checked that no record is whole in buf, that nothing is being
// skipped and that the stream has not ended.
func (s *streamReceiver) recvRoom(ctx context.Context, block bool, deliver func(uint32, []byte) error) (int, error) {
	if s.w-s.r >= codec.HeaderSize {
		length, tag := codec.ParseHeader(s.buf[s.r:])
		if length < roomMin || !s.fitsRoom(length, tag) {
			return roomNo, nil
		}
		// Every byte in buf is this frame's: it is not whole.
		got := copy(s.room, s.buf[s.r+codec.HeaderSize:s.w])
		s.r, s.w = 0, 0
		return roomDone, s.readBody(ctx, block, tag, s.room[:length], got, deliver)
	}
	if err := s.reserve(ctx, block, codec.HeaderSize, true); err != nil {
		return roomDone, err
	}
	// As much as buf could take back (but for the header) if the frame is
	// not for room: a payload of len(buf) bytes comes in one read.
	s.roomMax = min(len(s.room), len(s.buf)-s.r)
	s.roomN = 0
	s.readTo = toHead
	err := s.fill(ctx, block)
	s.readTo = toBuf
	switch {
	case err != nil:
		return roomDone, err
	case s.roomN == 0:
		return roomAgain, nil // the header is not whole yet, or the stream ended
	}
	length, tag := codec.ParseHeader(s.buf[s.r:])
	if !s.fitsRoom(length, tag) {
		if n := s.w + s.roomN; n > len(s.buf) { // by at most the header: bytes that have come
			nb := make([]byte, n)
			copy(nb, s.buf[:s.w])
			s.buf = nb
		}
		s.w += copy(s.buf[s.w:], s.room[:s.roomN])
		return roomAgain, nil
	}
	n := int(length)
	s.r, s.w = 0, 0
	if s.roomN < n {
		return roomDone, s.readBody(ctx, block, tag, s.room[:n], s.roomN, deliver)
	}
	// The whole frame came, and perhaps the start of the next one.
	s.w = copy(s.buf, s.room[n:s.roomN])
	err = deliver(tag, s.room[:n])
	s.release()
	return roomDone, err
}

// fitsRoom reports whether the frame whose header says length and tag can
// be read into s.room: it fits, is within the limit and carries no files.
func (s *streamReceiver) fitsRoom(length, tag uint32) bool {
	return uint64(length) <= uint64(len(s.room)) && uint64(length) <= uint64(s.limit) &&
		!(s.unixSock && tag&filesFlag != 0)
}

// readBody reads the rest of a payload into into, whose first got bytes
// have arrived, and delivers it; buf is empty. If the receive ends first,
// the frame's header and the bytes that came go back into buf.
func (s *streamReceiver) readBody(ctx context.Context, block bool, tag uint32, into []byte, got int, deliver func(uint32, []byte) error) error {
	var err error
	s.into, s.got, s.readTo = into, got, toBody
	for err == nil && s.sticky == nil && s.got < len(into) {
		err = s.fill(ctx, block)
	}
	got = s.got
	s.into, s.got, s.readTo = nil, 0, toBuf
	if got == len(into) {
		err = deliver(tag, into)
		s.release()
		return err
	}
	n := codec.HeaderSize + got
	if len(s.buf) < n {
		s.buf = make([]byte, max(n, readBufferSize)) // for bytes that have arrived
	}
	codec.PutHeader(s.buf, len(into), tag)
	copy(s.buf[codec.HeaderSize:], into[:got])
	s.r, s.w = 0, n
	if err != nil {
		return err
	}
	return s.end()
}

// drop drops a bad record of n bytes at r (what has not arrived yet too),
// so that the records after it can still be read.
func (s *streamReceiver) drop(n int) {
	if avail := s.w - s.r; n > avail {
		s.skip = uint64(n - avail)
		n = avail
	}
	s.r += n
	s.release()
}

// release empties buf once every byte in it is consumed, letting a buffer
// grown for one huge record go. A connection drawing on its listener's
// memory gives back at once what its buffer grew beyond connBase.
func (s *streamReceiver) release() {
	if s.r == s.w {
		s.r, s.w = 0, 0
		switch {
		case s.mem != nil && len(s.buf) > connBase:
			s.buf = nil
			s.mem.release(0)
		case len(s.buf) > maxIdleBuffer:
			s.buf = nil
		}
		return
	}
	if s.mem != nil && len(s.buf) > connBase && s.w-s.r <= readBufferSize {
		// The start of the next record came behind a long one: keep it in
		// a buffer of the usual size.
		nb := make([]byte, readBufferSize)
		s.w = copy(nb, s.buf[s.r:s.w])
		s.r = 0
		s.buf = nb
		s.mem.release(0)
	}
}

// discard drops buffered bytes of a payload being skipped.
func (s *streamReceiver) discard() {
	n := uint64(s.w - s.r)
	if n > s.skip {
		n = s.skip
	}
	s.r += int(n)
	s.skip -= n
	if s.r == s.w {
		s.r, s.w = 0, 0
	}
}

// end reports the stream's end once no whole frame is left.
func (s *streamReceiver) end() error {
	if s.sticky == io.EOF && (s.w > s.r || s.skip > 0) {
		return fmt.Errorf("stream ended inside a frame (%d bytes of it received): %w", s.w-s.r, io.ErrUnexpectedEOF)
	}
	return s.sticky
}

// reserve makes room in buf for more of the record at r: need bytes in
// all if known is set, else at least one more byte. buf grows only once it
// is full of the record's bytes, and then to at most three times what has
// arrived (twice, but the record's last step may take up to three): a
// header announcing a long record costs nothing until its bytes come, and a
// long record arrives in O(log n) reallocations. An accepted connection
// draws what its buffer grows beyond connBase from its listener's memory,
// waiting for it if block is set (or returning errMemoryWait); a record
// that could never fit in that memory is dropped with an error wrapping
// ErrFrameTooLarge.
func (s *streamReceiver) reserve(ctx context.Context, block bool, need int, known bool) error {
	if s.mem != nil && known && need-connBase > s.mem.m.limit {
		if s.perRead > 0 {
			return s.fail(s.mem.m.tooLarge(need)) // no record could ever be read
		}
		s.drop(need)
		return s.mem.m.tooLarge(need)
	}
	room := max(need, readBufferSize) // for the record, and for a read of several
	if len(s.buf)-s.r >= room {       // not s.r+room, which overflows for a record of nearly math.MaxInt
		return nil
	}
	if s.r > 0 {
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
	}
	if len(s.buf) >= room || (s.w < len(s.buf) && s.perRead == 0) {
		return nil // room enough, or room to read more of the record before growing
	}
	n := 2 * s.w
	if known && (need <= 3*s.w || s.perRead > 0) {
		n = need // a read record's room is there before its read
	}
	n = max(n, readBufferSize)
	if s.mem != nil && n > connBase {
		want := n - connBase
		if known {
			want = need - connBase // the whole record, for the banker
		} else if want > s.mem.m.limit {
			// A record of unknown length (a line) cannot be skipped.
			return s.fail(s.mem.m.tooLarge(n))
		}
		if err := s.growMemory(ctx, block, n-connBase, want, need, known); err != nil {
			return err
		}
	}
	nb := make([]byte, n)
	s.w = copy(nb, s.buf[:s.w])
	s.buf = nb
	return nil
}

// growMemory draws held bytes beyond connBase from the listener's memory,
// towards want for the record at r (need bytes in all, if known). If block
// is set it waits until that is safe, returning ctx.Err() if ctx ends first
// and an error wrapping os.ErrClosed after Close; otherwise it returns
// errMemoryWait. While it waits nothing more is read, but a peer that hangs
// up without sending the rest of the record ends the stream, as it would
// have if the bytes had been read.
func (s *streamReceiver) growMemory(ctx context.Context, block bool, held, want, need int, known bool) error {
	s.mw.held, s.mw.want, s.mw.need, s.mw.known = held, want, need, known
	var err error
	if !block {
		if err = s.fd.TryRead(s.memWaitFn); err == unix.EAGAIN {
			err = errMemoryWait
		}
	} else {
		for {
			// The wait ends when the descriptor has news (a hang-up) or
			// when memory is given back, which cancels wctx.
			wctx, cancel := context.WithCancel(ctx)
			s.mw.wake = cancel
			err = s.fd.Read(wctx, s.memWaitFn)
			cancel()
			if err != context.Canceled || ctx.Err() != nil {
				break
			}
		}
		s.mw.wake = nil
	}
	if err == errLeftShort {
		return s.fail(fmt.Errorf("stream ended inside a frame (%d bytes of it received): %w", s.w-s.r, io.ErrUnexpectedEOF))
	}
	return err
}

// fail ends the stream with err, dropping what is buffered.
func (s *streamReceiver) fail(err error) error {
	s.sticky = err
	s.r, s.w, s.buf = 0, 0, nil
	if s.mem != nil {
		s.mem.release(0)
	}
	return err
}

// memWaitStep is growMemory's attempt, run by the poller: nil once the
// memory is granted, errLeftShort if the peer has hung up short of the
// record, unix.EAGAIN to wait on.
func (s *streamReceiver) memWaitStep(fd int) error {
	ok, err := s.mem.try(s.mw.held, s.mw.want, s.mw.wake)
	switch {
	case err != nil:
		return err
	case ok:
		return nil
	case s.leftShort(fd):
		return errLeftShort
	}
	return unix.EAGAIN
}

// leftShort reports whether the peer has hung up without the rest of the
// record at r: what is buffered and what waits in the kernel fall short of
// its length (for a record of unknown length, nothing waits).
func (s *streamReceiver) leftShort(fd int) bool {
	ev, err := sys.PollNow(fd, unix.POLLRDHUP)
	if err != nil || ev&(unix.POLLRDHUP|unix.POLLHUP) == 0 {
		return false
	}
	queued, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	switch {
	case err != nil:
		return false
	case !s.mw.known:
		return queued == 0
	}
	return s.w-s.r+queued < s.mw.need
}

// fill reads what the kernel has into buf[w:], waiting if block is set.
func (s *streamReceiver) fill(ctx context.Context, block bool) error {
	err := pollRead(ctx, s.fd, block, s.readFn)
	switch {
	case !block && err == unix.EAGAIN:
		return ipcchan.ErrWouldBlock
	case err == nil && s.readN == 0:
		s.sticky = io.EOF
	case err == nil && s.pad && s.readN < s.perRead:
		clear(s.buf[s.w+s.readN : s.w+s.perRead])
		s.w += s.perRead
	case err == nil:
		s.took(s.readN)
	case errors.Is(err, os.ErrClosed) || err == context.Canceled || err == context.DeadlineExceeded:
		return err
	case errors.Is(err, unix.ECONNRESET):
		s.sticky = fmt.Errorf("%w: %w", ipcchan.ErrPeerGone, err)
	default:
		s.sticky = transportErr("read", err)
	}
	return nil
}

// took counts n bytes that readSome has read where readTo says.
func (s *streamReceiver) took(n int) {
	switch s.readTo {
	case toBody:
		s.got += n
	case toHead:
		h := s.r + codec.HeaderSize - s.w
		if n <= h {
			s.w += n
		} else {
			s.w += h
			s.roomN = n - h
		}
	default:
		s.w += n
	}
}

// read is the non-blocking read run by the poller.
//
// A read of 0 bytes is the end of the stream on a pipe whose writers are
// all gone (an anonymous pipe's cannot come back) and on a socket after
// the peer's FIN: the kernel decides under one lock that nothing is queued
// and that the other side is gone. A FIFO is different: a read end opened
// before any writer also reads 0 bytes, and writers may come, write and go
// between our read and our next look. There the end is a hang-up (a writer
// came and every writer went) with nothing readable, confirmed by one more
// read of 0 bytes; anything else is read or waited for (see fifoState).
func (s *streamReceiver) read(fd int) error {
	hungUp := false
	for {
		n, err := s.readSome(fd)
		if err != nil {
			s.readN = 0
			return err
		}
		if n == 0 && s.fifo && !hungUp {
			switch st, err := fifoState(fd); {
			case err != nil:
				s.readN = 0
				return err
			case st == fifoReadable:
				continue // a writer wrote since the read: take it
			case st == fifoHungUp:
				hungUp = true
				continue // a read of 0 now is the end; data is not
			default:
				return unix.EAGAIN // no writer yet, or one that has not written
			}
		}
		s.readN = n
		return nil
	}
}

// readSome reads once into buf[w:]. A receiver that takes files reads
// with a control buffer, and no further than the end of the frame at r:
// descriptors come with the first byte of their frame, so those of the
// next one stay out of the queue until this one is delivered. Any other
// reads without one, and the kernel closes any descriptor sent to it.
func (s *streamReceiver) readSome(fd int) (int, error) {
	switch s.readTo {
	case toBody:
		return unix.Read(fd, s.into[s.got:])
	case toHead:
		return sys.Readv2(fd, s.buf[s.w:s.r+codec.HeaderSize], s.room[:s.roomMax])
	}
	if s.maxFDs <= 0 {
		p := s.buf[s.w:]
		if s.perRead > 0 {
			p = p[:s.perRead] // one read, one record
		}
		return unix.Read(fd, p)
	}
	p := s.buf[s.w:]
	if s.readMax > 0 && len(p) > s.readMax {
		p = p[:s.readMax]
	}
	n, oobn, flags, err := sys.Recvmsg(fd, p, s.oob)
	if oobn > 0 {
		s.takeRights(s.oob[:oobn])
	}
	if flags&unix.MSG_CTRUNC != 0 {
		s.rightsErr = fmt.Errorf("the kernel dropped descriptors for want of room")
	}
	return n, err
}

// What poll says of a FIFO's read end after a read of 0 bytes.
const (
	fifoWaiting  = iota // no writer has come since we opened it, or one is there
	fifoReadable        // data is queued: a writer came and wrote since the read
	fifoHungUp          // a writer came and every writer went, nothing queued
)

// fifoState polls a FIFO's read end, without waiting, after a read of 0
// bytes. Readable data wins over a hang-up reported with it: a writer that
// wrote and exited since the read has left frames to take, not an end.
// Linux reports no hang-up to a reader that no writer has met yet. A
// hang-up with nothing queued still needs the confirming read: poll looks
// at the queue and at the writers without the pipe's lock, so a writer
// that opens, writes and closes meanwhile can hide behind it. A poll
// interrupted by a signal (EINTR) is retried, never taken for a hang-up.
func fifoState(fd int) (int, error) {
	ev, err := sys.PollNow(fd, unix.POLLIN)
	switch {
	case err != nil:
		return 0, fmt.Errorf("poll: %w", err)
	case ev&unix.POLLIN != 0:
		return fifoReadable, nil
	case ev&unix.POLLHUP != 0:
		return fifoHungUp, nil
	}
	return fifoWaiting, nil
}

func (s *streamReceiver) Close() error {
	err := s.fd.Close()
	if s.mem != nil {
		s.mem.close() // wakes a receive waiting for memory
	}
	s.fdqMu.Lock()
	closeAll(s.fdq) // descriptors that came with frames never read
	s.fdq = nil
	s.fdqMu.Unlock()
	return err
}

// SyscallConn lets ipcchan.Select wait on the descriptor.
func (s *streamReceiver) SyscallConn() (syscall.RawConn, error) { return rawConn{s.fd}, nil }

// File returns a duplicate of the descriptor for another process. Bytes
// already read into this process's buffer are not part of it.
func (s *streamReceiver) File() (*os.File, error) { return dupFile(s.fd) }

// Fail makes waits return err once queued data is read; see
// transport.Failer (ipcchan's WatchPeer).
func (s *streamReceiver) Fail(err error) { s.fd.Fail(err) }

// HandshakeByDefault reports that the stream expects a hello unless its
// framing is another program's (see transport.HandshakeDefaulter).
func (s *streamReceiver) HandshakeByDefault() bool { return s.framing.Tagged() }
