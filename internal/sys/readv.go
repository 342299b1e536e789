//go:build linux

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Readv2 reads from fd into a then b with one readv(2) call and returns how
// many bytes were read. It allocates nothing. a must not be empty.
func Readv2(fd int, a, b []byte) (int, error) {
	var iov [2]unix.Iovec
	iov[0].Base = &a[0]
	iov[0].SetLen(len(a))
	cnt := 1
	if len(b) > 0 {
		iov[1].Base = &b[0]
		iov[1].SetLen(len(b))
		cnt++
	}
	n, _, errno := unix.Syscall(unix.SYS_READV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
