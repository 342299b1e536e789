package endpoints

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/ipcchan/ipcchan"
)

// FileReceiver returns a Receiver that reads frames from a byte stream the
// caller opened: the read end of an os.Pipe, a FIFO, an inherited standard
// input, a stream socket — or receives messages from a POSIX message queue
// descriptor (one received over a Unix socket, say), as [OpenMQReceiver]
// does. It works on a duplicate of f's descriptor, put in
// non-blocking mode (which f shares); close f once FileReceiver returns.
// A descriptor the runtime poller cannot watch, such as a regular file, is
// refused, and so is a nil f. Options are those of [Pipe].
func FileReceiver[T any](f *os.File, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	if f == nil {
		return nil, errNilFile("open")
	}
	fd, err := dupOf(f)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: f.Name(), Err: err}
	}
	if isMQueue(fd) {
		return newMQReceiverOn[T](fd, "posix mq "+f.Name(), opts)
	}
	if isRingFile(fd) {
		return ringReceiverOn[T](fd, "ring in "+f.Name(), opts)
	}
	return newStreamReceiverOn[T](fd, f.Name(), kindOf(fd), opts)
}

// isMQueue reports whether fd is a POSIX message queue descriptor.
func isMQueue(fd int) bool {
	var fs unix.Statfs_t
	return unix.Fstatfs(fd, &fs) == nil && fs.Type == mqueueMagic
}

// kindOf tells a FIFO or pipe (where a reader may come before any writer)
// from other streams.
func kindOf(fd int) streamKind {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO {
		return fifoKind
	}
	return streamAny
}

// FileSender returns a Sender that writes frames to a byte stream the caller
// opened; see [FileReceiver]. Atomic writes are off unless
// ipcchan.WithAtomicWrites(true) is given.
func FileSender[T any](f *os.File, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	if f == nil {
		return nil, errNilFile("open")
	}
	fd, err := dupOf(f)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: f.Name(), Err: err}
	}
	if isMQueue(fd) {
		return newMQSenderOn[T](fd, "posix mq "+f.Name(), opts)
	}
	if isRingFile(fd) {
		return ringSenderOn[T](fd, "ring in "+f.Name(), opts)
	}
	return newStreamSenderOn[T](fd, f.Name(), pipeKind, opts)
}

// dupOf duplicates f's descriptor without f.Fd, which would switch f to
// blocking mode.
func dupOf(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("dup: %w", derr)
	}
	return nfd, nil
}
