//go:build linux

// Package sys holds the system call wrappers that golang.org/x/sys/unix
// lacks or that must not allocate.
package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writev2 writes a then b to fd with one writev(2) call and returns how many
// bytes were written. Unlike unix.Writev it allocates nothing.
func Writev2(fd int, a, b []byte) (int, error) { return vector2(unix.SYS_WRITEV, fd, a, b) }

// Readv2 reads from fd into a then b with one readv(2) call and returns how
// many bytes were read. It allocates nothing. a must not be empty (a read
// into nothing returns 0, which says end of file).
func Readv2(fd int, a, b []byte) (int, error) { return vector2(unix.SYS_READV, fd, a, b) }

// vector2 makes the vectored call trap (readv or writev) on fd with the
// non-empty ones of a and b; with both empty it makes none and returns 0.
func vector2(trap uintptr, fd int, a, b []byte) (int, error) {
	var iov [2]unix.Iovec
	cnt := 0
	for _, p := range [2][]byte{a, b} {
		if len(p) > 0 {
			iov[cnt].Base = &p[0]
			iov[cnt].SetLen(len(p))
			cnt++
		}
	}
	if cnt == 0 {
		return 0, nil
	}
	n, _, errno := unix.Syscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
