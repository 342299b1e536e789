package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// RecvTrunc receives one datagram into buf with recv(MSG_TRUNC) and returns
// its full length, which exceeds len(buf) if the datagram did not fit (the
// rest is lost). Unlike unix.Recvfrom it allocates nothing.
func RecvTrunc(fd int, buf []byte) (int, error) {
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(buf)), unix.MSG_TRUNC, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
