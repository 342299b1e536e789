package endpoints

// Helpers on descriptors, used by every descriptor-backed endpoint.

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
)

// rawConn gives a poller.FD the Control method of syscall.RawConn that
// ipcchan.Select needs. Read and Write are not offered.
type rawConn struct{ fd *poller.FD }

func (c rawConn) Control(f func(fd uintptr)) error {
	return c.fd.Control(func(fd int) { f(uintptr(fd)) })
}

func (c rawConn) Read(func(fd uintptr) bool) error  { return errRawIO }
func (c rawConn) Write(func(fd uintptr) bool) error { return errRawIO }

var errRawIO = errorString("raw reads and writes are not offered; use the endpoint")

type errorString string

func (e errorString) Error() string { return string(e) }

// dupFile returns an *os.File for a close-on-exec duplicate of fd's
// descriptor.
func dupFile(fd *poller.FD) (*os.File, error) {
	nfd, err := fd.Dup()
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), fd.Name()), nil
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
	if err := rc.Control(func(fd uintptr) { nfd, derr = dupFD(int(fd)) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	return nfd, nil
}

// closeAll closes descriptors this process received and will not use.
func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// dupFD duplicates fd, close-on-exec; its error names the descriptor limit
// where that is the cause.
func dupFD(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("dup: %w", sys.DescriptorLimit(err))
	}
	return nfd, nil
}
