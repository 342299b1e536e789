//go:build linux && (386 || arm)

package sys

import "golang.org/x/sys/unix"

// SemidDs is struct semid64_ds, what semctl(IPC_STAT) reports: the 32-bit
// layout of x86 and asm-generic, each time in two words (low, high).
type SemidDs struct {
	Perm      unix.SysvIpcPerm
	Otime     uint32 // last semop
	OtimeHigh uint32
	Ctime     uint32 // last change
	CtimeHigh uint32
	Nsems     uint
	_         [2]uint
}
