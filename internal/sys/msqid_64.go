//go:build linux && (amd64 || arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package sys

import "golang.org/x/sys/unix"

// MsqidDs is struct msqid64_ds, what msgctl(IPC_STAT) reports: the layout
// every 64-bit architecture shares.
type MsqidDs struct {
	Perm   unix.SysvIpcPerm
	Stime  int   // last msgsnd
	Rtime  int   // last msgrcv
	Ctime  int   // last change
	Cbytes uint  // bytes queued now
	Qnum   uint  // messages queued now
	Qbytes uint  // capacity in bytes
	Lspid  int32 // pid of the last msgsnd
	Lrpid  int32 // pid of the last msgrcv
	_      [2]uint
}
