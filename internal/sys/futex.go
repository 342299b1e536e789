//go:build linux

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	futexWait = 0 // FUTEX_WAIT, shared between processes (not FUTEX_PRIVATE_FLAG)
	futexWake = 1 // FUTEX_WAKE
)

// FutexWait sleeps while *addr == val, until FutexWake on the same word
// (in any process that maps it), a signal, or the relative timeout (nil:
// none). It returns nil when woken, EAGAIN if *addr != val on entry,
// ETIMEDOUT or EINTR. The word must be in memory shared between the
// processes (MAP_SHARED), since the wait is not FUTEX_PRIVATE.
func FutexWait(addr *uint32, val uint32, timeout *unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), uintptr(unsafe.Pointer(timeout)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// FutexWake wakes up to n waiters sleeping on addr and returns how many it
// woke.
func FutexWake(addr *uint32, n int) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(n), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
