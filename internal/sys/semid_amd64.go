//go:build linux

package sys

import "golang.org/x/sys/unix"

// SemidDs is struct semid64_ds, what semctl(IPC_STAT) reports: on amd64,
// x86's with a padding word after each time (arch/x86's sembuf.h).
type SemidDs struct {
	Perm  unix.SysvIpcPerm
	Otime int // last semop
	_     uint
	Ctime int // last change
	_     uint
	Nsems uint
	_     [2]uint
}
