//go:build linux

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// FileID tells files apart: the device a file is on and its inode number.
type FileID struct {
	DevMajor, DevMinor uint32
	Ino                uint64
}

// noPath is the empty path statx takes with AT_EMPTY_PATH.
var noPath = [1]byte{}

// LstatID returns the identity of the file at path, a NUL-terminated byte
// string, without following a symbolic link in its last component. Unlike
// unix.Lstat it does not allocate.
func LstatID(path []byte) (FileID, error) {
	if len(path) == 0 || path[len(path)-1] != 0 {
		return FileID{}, unix.EINVAL
	}
	return statxID(unix.AT_FDCWD, &path[0], unix.AT_SYMLINK_NOFOLLOW)
}

// FstatID returns the identity of the open file fd, as LstatID gives it.
func FstatID(fd int) (FileID, error) { return statxID(fd, &noPath[0], unix.AT_EMPTY_PATH) }

func statxID(dirfd int, path *byte, flags int) (FileID, error) {
	var sx unix.Statx_t
	_, _, errno := unix.Syscall6(unix.SYS_STATX, uintptr(dirfd), uintptr(unsafe.Pointer(path)), uintptr(flags|unix.AT_STATX_SYNC_AS_STAT), unix.STATX_INO, uintptr(unsafe.Pointer(&sx)), 0)
	if errno != 0 {
		return FileID{}, errno
	}
	return FileID{DevMajor: sx.Dev_major, DevMinor: sx.Dev_minor, Ino: sx.Ino}, nil
}
