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

	"github.com/ipcchan/ipcchan/codec"
	"github.com/ipcchan/ipcchan/internal/poller"
	"github.com/ipcchan/ipcchan/internal/sys"
	"github.com/ipcchan/ipcchan/ipcchan"
)

// readBufferSize is the usual size of a stream receiver's buffer: one read
// takes in this much, often many frames.
const readBufferSize = 64 << 10

// maxIdleBuffer is the largest buffer a stream receiver keeps once it is
// empty; a larger one, grown for a large frame, is released.
const maxIdleBuffer = 1 << 20

// streamReceiver reads frames (codec's wire format) from a byte stream: a
// pipe, a FIFO or a stream socket. It implements ipcchan.MsgReceiver.
//
// Bytes read from the kernel stay in buf until a whole frame is there, so a
// receive cancelled part-way through a frame loses nothing: the next one
// goes on where it stopped.
type streamReceiver struct {
	fd      *poller.FD
	desc    string
	max     int
	fifo    bool // a read of 0 bytes before any writer came is not end of stream
	framing codec.Framing

	buf    []byte // unread bytes are buf[r:w]
	r, w   int
	skip   uint64 // bytes of an oversized frame still to discard
	sticky error  // end of stream or a read error, reported once buf is drained
	readFn func(int) error
	readN  int

	// Descriptors received on a Unix socket (see stream_files.go).
	unixRights   bool
	oob          []byte
	fdqMu        sync.Mutex // Close may run during a receive
	fdq          []int
	rightsErr    error
	deliverFiles func(uint32, []byte, []int) error
}

func newStreamReceiver(fd *poller.FD, desc string, max int, fifo bool, framing codec.Framing) *streamReceiver {
	s := &streamReceiver{fd: fd, desc: desc, max: max, fifo: fifo, framing: framing}
	s.readFn = s.read
	fd.Control(func(fd int) { s.unixRights = isUnixSocket(fd) })
	if s.unixRights {
		s.oob = make([]byte, unix.CmsgSpace(maxFiles*4))
	}
	return s
}

func (s *streamReceiver) String() string { return s.desc }

func (s *streamReceiver) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	return s.recv(ctx, true, deliver)
}

func (s *streamReceiver) TryRecvMsg(deliver func(uint32, []byte) error) error {
	return s.recv(context.Background(), false, deliver)
}

func (s *streamReceiver) recv(ctx context.Context, block bool, deliver func(uint32, []byte) error) error {
	for {
		if s.skip > 0 {
			s.discard()
		}
		need := 1
		if s.skip == 0 && s.w > s.r {
			payload, tag, n, more, err := s.framing.Split(s.buf[s.r:s.w], s.max)
			switch {
			case err != nil && n == 0:
				// The stream cannot be resynchronised: this is its end.
				s.r, s.w = 0, 0
				s.sticky = err
				return err
			case err != nil:
				// Drop the bad record (what has not arrived yet too) so
				// that the records after it can still be read.
				if avail := s.w - s.r; n > avail {
					s.skip = uint64(n - avail)
					n = avail
				}
				s.r += n
				s.release()
				return err
			case n > 0:
				s.r += n
				if s.unixRights && tag&filesFlag != 0 {
					err = s.deliverWithFiles(tag, payload, deliver)
				} else {
					err = deliver(tag, payload)
				}
				s.release()
				return err
			}
			need = max(more, s.w-s.r+1)
		}
		s.reserve(need)
		if s.sticky != nil {
			return s.end()
		}
		if err := s.fill(ctx, block); err != nil {
			return err
		}
	}
}

// release empties buf once every byte in it is consumed, letting a buffer
// grown for one huge record go.
func (s *streamReceiver) release() {
	if s.r == s.w {
		s.r, s.w = 0, 0
		if len(s.buf) > maxIdleBuffer {
			s.buf = nil
		}
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

// reserve makes room in buf for a record of n bytes starting at r.
func (s *streamReceiver) reserve(n int) {
	if n < readBufferSize {
		n = readBufferSize
	}
	if len(s.buf) >= s.r+n {
		return
	}
	if len(s.buf) >= n {
		s.w = copy(s.buf, s.buf[s.r:s.w])
		s.r = 0
		return
	}
	if n < 2*len(s.buf) && s.w-s.r == len(s.buf) {
		// A record of unknown length (a line not yet ended) filled the
		// buffer: grow it geometrically, not a byte at a time.
		n = 2 * len(s.buf)
	}
	nb := make([]byte, n)
	s.w = copy(nb, s.buf[s.r:s.w])
	s.r = 0
	s.buf = nb
}

// fill reads what the kernel has into buf[w:], waiting if block is set.
func (s *streamReceiver) fill(ctx context.Context, block bool) error {
	var err error
	if block {
		err = s.fd.Read(ctx, s.readFn)
	} else {
		err = s.fd.TryRead(s.readFn)
		if err == unix.EAGAIN {
			return ipcchan.ErrWouldBlock
		}
	}
	switch {
	case err == nil && s.readN == 0:
		s.sticky = io.EOF
	case err == nil:
		s.w += s.readN
	case errors.Is(err, os.ErrClosed) || err == context.Canceled || err == context.DeadlineExceeded:
		return err
	case errors.Is(err, unix.ECONNRESET):
		s.sticky = fmt.Errorf("%w: %w", ipcchan.ErrPeerGone, err)
	default:
		s.sticky = fmt.Errorf("read: %w", err)
	}
	return nil
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

// readSome reads once into buf[w:].
func (s *streamReceiver) readSome(fd int) (int, error) {
	if !s.unixRights {
		return unix.Read(fd, s.buf[s.w:])
	}
	n, oobn, flags, err := sys.Recvmsg(fd, s.buf[s.w:], s.oob)
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
