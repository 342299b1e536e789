package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sembuf is struct sembuf: one operation of semop(2).
type Sembuf struct {
	Num uint16 // which counter of the set
	Op  int16  // > 0 adds, < 0 waits until it can subtract, 0 waits for zero
	Flg int16  // IPC_NOWAIT, SEM_UNDO
}

// SEM_UNDO makes the kernel undo the operation when the process exits.
const SEM_UNDO = 0x1000

// semctl commands x/sys/unix does not define.
const (
	GETPID  = 11
	GETVAL  = 12
	GETALL  = 13
	GETNCNT = 14
	GETZCNT = 15
	SETVAL  = 16
	SETALL  = 17
)

// SemidDs is struct semid64_ds, what semctl(IPC_STAT) reports.
type SemidDs struct {
	Perm  unix.SysvIpcPerm
	Otime int64 // last semop
	_     uint64
	Ctime int64 // last change
	_     uint64
	Nsems uint64
	_     [2]uint64
}

// Semget is the semget system call: the identifier of the set of nsems
// counters with key, created if flags has IPC_CREAT.
func Semget(key Key, nsems, flags int) (int, error) {
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), uintptr(nsems), uintptr(flags))
	if errno != 0 {
		return -1, errno
	}
	return int(id), nil
}

// Semop is the semop system call: it applies every operation of ops
// atomically, waiting (unless IPC_NOWAIT: EAGAIN) until all can be.
// Blocked, it returns EINTR on a signal (never restarted) and EIDRM when
// the set is removed.
func Semop(id int, ops []Sembuf) error {
	if len(ops) == 0 {
		return nil
	}
	_, _, errno := unix.Syscall(unix.SYS_SEMOP, uintptr(id), uintptr(unsafe.Pointer(&ops[0])), uintptr(len(ops)))
	if errno != 0 {
		return errno
	}
	return nil
}

// Semctl is the semctl system call for commands whose argument is an
// integer (or none): GETVAL, SETVAL, GETNCNT, GETPID, IPC_RMID.
func Semctl(id, num, cmd, arg int) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), uintptr(num), uintptr(cmd), uintptr(arg), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// SemctlStat is semctl(IPC_STAT).
func SemctlStat(id int, ds *SemidDs) error {
	_, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), 0, unix.IPC_STAT, uintptr(unsafe.Pointer(ds)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
