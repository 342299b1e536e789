package endpoints

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// CreateFIFO makes a FIFO (named pipe) at path, with permission 0600 unless
// ipcchan.WithPerm says otherwise (the process umask still applies; it is
// the one option CreateFIFO honours). Like O_EXCL, it fails if anything
// exists at path; the error then wraps fs.ErrExist.
func CreateFIFO(path string, opts ...ipcchan.Option) error {
	cfg, err := newConfig("mkfifo", fifoDesc(path), optCreate, opts)
	if err != nil {
		return err
	}
	if err := unix.Mkfifo(path, uint32(cfg.Perm().Perm())); err != nil {
		return opErr("mkfifo", fifoDesc(path), err)
	}
	return nil
}

// RemoveFIFO removes the FIFO at path. It refuses to remove anything that is
// not a FIFO, a symbolic link included.
func RemoveFIFO(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return opErr("remove", fifoDesc(path), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return &ipcchan.OpError{Op: "remove", Endpoint: fifoDesc(path), Err: errNotFIFO(st.Mode)}
	}
	if err := unix.Unlink(path); err != nil {
		return opErr("remove", fifoDesc(path), err)
	}
	return nil
}

// OpenFIFOReceiver opens the FIFO at path for reading and returns a Receiver
// on it. It does not wait for a writer: Recv waits until one opens the FIFO
// and sends, and returns io.EOF once every writer that came has closed.
//
// A path whose last component is a symbolic link, or that is not a FIFO, is
// refused. ctx is checked before opening. Options: those of a Receiver
// (WithCodec, WithMaxMessageSize, WithHandshake, WithForeignPeer),
// WithFraming and WithWaitForCreate (wait for the FIFO to be made; ctx
// ends that wait too).
func OpenFIFOReceiver[T any](ctx context.Context, path string, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	if ctx == nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: fifoDesc(path), Err: errNilContext}
	}
	cfg, err := newConfig("open", fifoDesc(path), optStreamRecv|optWait, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fd, err := openFIFOWaiting(ctx, cfg, path, unix.O_RDONLY)
	if err != nil {
		return nil, wrapErr("open", fifoDesc(path), err)
	}
	return newStreamReceiverOn[T](fd, fifoDesc(path)+" read end", fifoKind, cfg)
}

// OpenFIFOSender opens the FIFO at path for writing and returns a Sender on
// it, waiting until a reader has the FIFO open; ctx cancels the wait.
//
// Several processes may write to one FIFO, so atomic writes are on by
// default: each frame is written whole in one write of at most PIPE_BUF
// (4096) bytes, and larger messages are refused with ErrMessageTooLarge.
// Pass ipcchan.WithAtomicWrites(false) when this is the only writer.
// A symbolic link or a path that is not a FIFO is refused. Options: those
// of a Sender (WithCodec, WithTag, WithMaxMessageSize, WithHandshake,
// WithForeignPeer), WithFraming, WithSendBuffer, WithLinger,
// WithAtomicWrites and WithWaitForCreate (wait for the FIFO to be made
// before waiting for its reader; ctx ends that wait too).
func OpenFIFOSender[T any](ctx context.Context, path string, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	if ctx == nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: fifoDesc(path), Err: errNilContext}
	}
	cfg, err := newConfig("open", fifoDesc(path), optStreamSend|optWait, opts)
	if err != nil {
		return nil, err
	}
	fd, err := openFIFOWaiting(ctx, cfg, path, unix.O_WRONLY)
	if errors.Is(err, unix.ENXIO) {
		fd, err = waitOpenFIFOWriter(ctx, path)
	}
	if err != nil {
		return nil, wrapErr("open", fifoDesc(path), err)
	}
	return newStreamSenderOn[T](fd, fifoDesc(path)+" write end", fifoKind, cfg)
}

// openFIFOWaiting is openFIFO, waiting for the FIFO to be created if cfg
// says so (ipcchan.WithWaitForCreate), bounded by ctx too.
func openFIFOWaiting(ctx context.Context, cfg *transport.Config, path string, mode int) (int, error) {
	wctx, release, err := waitContext(cfg, ctx, "open", fifoDesc(path))
	if err != nil {
		return -1, err
	}
	defer release()
	fd := -1
	err = awaitCreate(wctx, fifoDesc(path), filepath.Dir(path), func() (openState, error) {
		var err error
		if fd, err = openFIFO(path, mode); notExist(err) {
			return notCreated, err
		}
		return opened, err
	})
	return fd, err
}

// waitOpenFIFOWriter retries a non-blocking open for writing, which fails
// with ENXIO while no reader has the FIFO open, backing off from 100µs to
// 10ms between tries.
func waitOpenFIFOWriter(ctx context.Context, path string) (int, error) {
	delay := 100 * time.Microsecond
	var timer *time.Timer
	for {
		if err := ctx.Err(); err != nil {
			return -1, err
		}
		fd, err := openFIFO(path, unix.O_WRONLY)
		if !errors.Is(err, unix.ENXIO) {
			return fd, err
		}
		if timer == nil {
			timer = time.NewTimer(delay)
			defer timer.Stop()
		} else {
			timer.Reset(delay)
		}
		select {
		case <-ctx.Done():
			return -1, ctx.Err()
		case <-timer.C:
		}
		delay = min(2*delay, 10*time.Millisecond)
	}
}

// openFIFO opens path without following a symbolic link in its last
// component and checks that it is a FIFO.
func openFIFO(path string, mode int) (int, error) {
	fd, err := unix.Open(path, mode|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ELOOP {
		return -1, fmt.Errorf("refusing a symbolic link: %w", err)
	}
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		return -1, errNotFIFO(st.Mode)
	}
	return fd, nil
}

func errNotFIFO(mode uint32) error {
	return fmt.Errorf("%w (file type %s)", ErrNotFIFO, fileType(mode))
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "regular file"
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFLNK:
		return "symbolic link"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	}
	return fmt.Sprintf("%#o", mode&unix.S_IFMT)
}

func fifoDesc(path string) string { return "fifo " + path }
