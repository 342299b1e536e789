//go:build linux && (mips || mipsle)

package sys

import "golang.org/x/sys/unix"

// SemidDs is struct semid64_ds, what semctl(IPC_STAT) reports: 32-bit
// mips's layout, the count before the high words of the times.
type SemidDs struct {
	Perm      unix.SysvIpcPerm
	Otime     uint32 // last semop
	Ctime     uint32 // last change
	Nsems     uint
	OtimeHigh uint32
	CtimeHigh uint32
}
