package ipcchan

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan/transport"
)

// SendFiles sends v with open files attached, on transports that carry
// descriptors (Unix sockets). The receiving process gets its own
// descriptors for the same open files, with [Receiver.RecvFiles]; the
// caller keeps files and may close them once SendFiles returns. To hand over
// a whole endpoint, attach the *os.File that its File method returns.
//
// The files must stay open until SendFiles returns. It returns an error
// wrapping ErrNotSupported on other transports, and the errors of Send.
func (s *Sender[T]) SendFiles(ctx context.Context, v T, files ...*os.File) error {
	if err := s.misuse("send", ctx); err != nil {
		return err
	}
	fs, ok := s.t.(transport.FileMsgSender)
	if !ok {
		return s.wrap(fmt.Errorf("%w: cannot attach files", ErrNotSupported))
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fd, err := fdOf(f)
		if err != nil {
			return s.wrap(fmt.Errorf("file %d (%s): %w", i, f.Name(), err))
		}
		fds[i] = fd
	}
	return s.send(ctx, s.tag, v, fs, fds)
}

// fdOf returns f's descriptor number without f.Fd, which would switch f to
// blocking mode.
func fdOf(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// RecvFiles is Recv that also returns the files that came with the value
// (none for a value sent with Send). The caller owns them. Only a receiver
// made with WithRecvFiles takes files; on any other, and on transports that
// carry no descriptors, RecvFiles returns an error wrapping
// ErrNotSupported. A value received with Recv, TryRecv or Chan loses its
// files: they are closed, never leaked.
func (r *Receiver[T]) RecvFiles(ctx context.Context) (T, []*os.File, error) {
	var zero T
	if err := r.misuse("recv", ctx); err != nil {
		return zero, nil, err
	}
	fr, ok := r.t.(transport.FileMsgReceiver)
	if !ok {
		return zero, nil, r.wrap(fmt.Errorf("%w: cannot receive files", ErrNotSupported))
	}
	if err := r.begin(ctx, nil); err != nil {
		return zero, nil, err
	}
	defer r.endRecv()
	if it, ok := r.ahead.pop(); ok {
		return it.v, nil, nil
	}
	r.dst = &r.val
	err := r.sticky
	for err == nil || errors.Is(err, errGreeted) {
		if err = fr.RecvMsgFiles(ctx, r.deliverFilesFn); !errors.Is(err, errGreeted) {
			err = r.refusedBeforeHello(err)
			break
		}
	}
	v, files := r.val, r.files
	r.val, r.dst, r.files = zero, nil, nil
	if err != nil {
		return zero, nil, r.wrap(err)
	}
	return v, files, nil
}

// deliverFiles decodes a message and takes ownership of its descriptors,
// closing them if the value cannot be decoded.
func (r *Receiver[T]) deliverFiles(tag uint32, payload []byte, fds []int) error {
	if err := r.deliver(tag, payload); err != nil {
		closeFDs(fds)
		return err
	}
	r.files = make([]*os.File, len(fds))
	for i, fd := range fds {
		r.files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("received descriptor %d", i))
	}
	return nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
