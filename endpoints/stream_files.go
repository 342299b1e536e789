package endpoints

import (
	"context"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
)

// Files on Unix stream sockets (SCM_RIGHTS). A frame that carries
// descriptors has bit 31 of its tag set, and its payload begins with a
// big-endian uint32 count of descriptors; the descriptors travel as
// ancillary data with the frame's first byte.
//
// Only a receiver made with ipcchan.WithRecvFiles takes them: it reads with
// a control buffer, queues what arrives and gives each such frame its count
// from the queue, so a read that spans several frames cannot mix them up.
// It reads no further than the end of a frame it has begun, so the queue
// holds one frame's descriptors at a time; beyond its bound (a peer sending
// descriptors no frame claims) they are closed on arrival, and the frame
// that then lacks its own is refused with an error that says so. Any other
// receiver reads without a control buffer, and the kernel closes whatever
// descriptors come.
const (
	filesFlag = 1 << 31
	maxFiles  = 253 // SCM_MAX_FD
)

// isUnixSocket reports whether fd is an AF_UNIX socket.
func isUnixSocket(fd int) bool {
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	return err == nil && dom == unix.AF_UNIX
}

// SendMsgFiles sends msg with fds attached; see transport.FileMsgSender.
func (s *streamSender) SendMsgFiles(ctx context.Context, tag uint32, msg []byte, fds []int) error {
	switch {
	case !s.unixRights:
		return fmt.Errorf("%w: only Unix sockets carry files", ipcchan.ErrNotSupported)
	case tag&filesFlag != 0:
		return fmt.Errorf("%w: tags from 0x80000000 up mark attached files on Unix sockets", ErrReservedTag)
	case len(fds) > maxFiles:
		return fmt.Errorf("%w: %d files, the kernel passes at most %d in one message", ipcchan.ErrTooManyFiles, len(fds), maxFiles)
	case len(fds) == 0:
		return s.SendMsg(ctx, tag, msg)
	case 4+len(msg) > s.max:
		return fmt.Errorf("%w: %d bytes, limit %d", ipcchan.ErrMessageTooLarge, 4+len(msg), s.max)
	}
	body := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(msg)), uint32(len(fds)))
	body = append(body, msg...)
	s.mu.Lock()
	// The descriptors must leave with the frame's first byte, so the
	// frame goes straight to the kernel, after whatever is queued.
	for s.flushing && !s.closed && s.err == nil {
		if err := s.waitProgress(ctx); err != nil {
			return err
		}
	}
	if err := s.unusable(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.rights = unix.UnixRights(fds...)
	defer func() { s.rights = nil }()
	return s.sendDirect(ctx, tag|filesFlag, body, true) // unlocks s.mu
}

// writeWithRights writes the start of the current frame with sendmsg,
// attaching s.rights; once a byte has gone, the descriptors have too.
func (s *streamSender) writeWithRights(fd int) error {
	n, err := unix.SendmsgBuffers(fd, [][]byte{s.frame[0], s.frame[1]}, s.rights, nil, 0)
	if err != nil {
		return err
	}
	s.written += n
	s.rights = nil
	return nil
}

// RecvMsgFiles receives a message with the descriptors that came with it;
// see transport.FileMsgReceiver.
func (r *streamReceiver) RecvMsgFiles(ctx context.Context, deliver func(uint32, []byte, []int) error) error {
	switch {
	case !r.unixSock:
		return fmt.Errorf("%w: only Unix sockets carry files", ipcchan.ErrNotSupported)
	case r.maxFDs == 0:
		return fmt.Errorf("%w: this receiver takes no files (the kernel closes any sent to it): make it with ipcchan.WithRecvFiles", ipcchan.ErrNotSupported)
	}
	r.deliverFiles = deliver
	defer func() { r.deliverFiles = nil }()
	return r.RecvMsg(ctx, func(tag uint32, payload []byte) error { return deliver(tag, payload, nil) })
}

// takeRights queues the descriptors in control messages received with data.
func (r *streamReceiver) takeRights(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		r.rightsErr = fmt.Errorf("malformed control message: %w", err)
		return
	}
	r.fdqMu.Lock()
	defer r.fdqMu.Unlock()
	for _, m := range msgs {
		fds, err := unix.ParseUnixRights(&m)
		switch {
		case err != nil:
		case r.fd.Closed():
			closeAll(fds)
		case len(r.fdq)+len(fds) > r.maxFDs:
			// A peer sending descriptors no frame claims would fill this
			// process's descriptor table: drop them.
			closeAll(fds)
			r.rightsErr = fmt.Errorf("the peer sent descriptors beyond the %d this receiver keeps for a value not yet read (ipcchan.WithRecvFiles): %d closed", r.maxFDs, len(fds))
		default:
			r.fdq = append(r.fdq, fds...)
		}
	}
}

// deliverWithFiles hands a frame that carries descriptors to the receive in
// progress: with its descriptors to RecvMsgFiles, or to a plain RecvMsg
// after closing them. On a receiver that takes no files the kernel has
// closed them already.
func (r *streamReceiver) deliverWithFiles(tag uint32, payload []byte, deliver func(uint32, []byte) error) error {
	if len(payload) < 4 {
		return fmt.Errorf("%w: a frame marked as carrying files is %d bytes, too short for its count", codec.ErrDecode, len(payload))
	}
	if r.maxFDs == 0 {
		// The kernel closed them: this receiver takes none.
		return deliver(tag&^filesFlag, payload[4:])
	}
	n := int(binary.BigEndian.Uint32(payload))
	r.fdqMu.Lock()
	defer r.fdqMu.Unlock()
	if n > len(r.fdq) {
		err := fmt.Errorf("%w: a frame announces %d files, %d arrived", codec.ErrDecode, n, len(r.fdq))
		if r.rightsErr != nil {
			err = fmt.Errorf("%w (%w)", err, r.rightsErr)
			r.rightsErr = nil
		}
		closeAll(r.fdq)
		r.fdq = r.fdq[:0]
		return err
	}
	fds := append([]int(nil), r.fdq[:n]...)
	r.fdq = append(r.fdq[:0], r.fdq[n:]...)
	tag &^= filesFlag
	if r.deliverFiles != nil {
		return r.deliverFiles(tag, payload[4:], fds)
	}
	closeAll(fds)
	return deliver(tag, payload[4:])
}
