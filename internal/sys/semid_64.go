//go:build linux && (arm64 || loong64 || mips64 || mips64le || ppc64 || ppc64le || riscv64 || s390x)

package sys

import "golang.org/x/sys/unix"

// SemidDs is struct semid64_ds, what semctl(IPC_STAT) reports: the
// asm-generic 64-bit layout, which mips64, powerpc and s390 share (no
// padding after the times, unlike amd64's).
type SemidDs struct {
	Perm  unix.SysvIpcPerm
	Otime int // last semop
	Ctime int // last change
	Nsems uint
	_     [2]uint
}
