//go:build linux && (386 || arm || mips || mipsle)

package sys

import "golang.org/x/sys/unix"

// MsqidDs is struct msqid64_ds, what msgctl(IPC_STAT) reports: the 32-bit
// layout, each time in two words (in an order that differs between
// architectures, so they are not named here).
type MsqidDs struct {
	Perm   unix.SysvIpcPerm
	_      [6]uint32 // the times of the last msgsnd, msgrcv and change
	Cbytes uint      // bytes queued now
	Qnum   uint      // messages queued now
	Qbytes uint      // capacity in bytes
	Lspid  int32     // pid of the last msgsnd
	Lrpid  int32     // pid of the last msgrcv
	_      [2]uint
}
