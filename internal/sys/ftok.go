//go:build linux

package sys

import (
	"golang.org/x/sys/unix"
)

// Key is a System V IPC key, as ftok(3) returns it and msgget(2), semget(2)
// and shmget(2) take it. IPCPrivate asks for a new object only this process
// and its children (through the identifier) can find.
type Key int32

// IPCPrivate is IPC_PRIVATE.
const IPCPrivate Key = unix.IPC_PRIVATE

// Ftok derives a System V IPC key from an existing file and a project
// identifier exactly as glibc's ftok does: the low 16 bits of the file's
// inode number, the low 8 bits of its device number, and the low 8 bits of
// id. Only the low 8 bits of id count, and id 0 is allowed (glibc allows it
// though POSIX leaves it unspecified). It returns the stat error for a file
// that does not exist.
func Ftok(path string, id int) (Key, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	return Key(uint32(st.Ino&0xffff) | uint32(st.Dev&0xff)<<16 | uint32(id&0xff)<<24), nil
}
