//go:build linux

package sys

import (
	"encoding/binary"
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

// ipc64 is IPC_64, the flag that asks the old semctl/msgctl/shmctl entry
// points for the 64-bit structure layouts (see ctlCmd).
const ipc64 = 0x100

// SemunInt returns the union semun holding the integer v (SETVAL's
// argument) as a machine word of wordSize bytes in byte order order. The
// union's int is at its start, so on a 64-bit big-endian machine it is
// the word's high half: the kernel's semctl takes arg >> 32 there.
func SemunInt(v int32, wordSize int, order binary.ByteOrder) uint64 {
	if wordSize == 8 && order == binary.BigEndian {
		return uint64(uint32(v)) << 32
	}
	return uint64(uint32(v))
}

// Semget is the semget system call: the identifier of the set of nsems
// counters with key, created if flags has IPC_CREAT.
func Semget(key Key, nsems, flags int) (int, error) { return semget(key, nsems, flags) }

// Semop is the semop system call: it applies every operation of ops
// atomically, waiting (unless IPC_NOWAIT: EAGAIN) until all can be.
// Blocked, it returns EINTR on a signal (never restarted) and EIDRM when
// the set is removed.
func Semop(id int, ops []Sembuf) error {
	if len(ops) == 0 {
		return nil
	}
	return semop(id, unsafe.Pointer(&ops[0]), len(ops))
}

// Semctl is the semctl system call for commands whose argument is an
// integer (or none): GETVAL, SETVAL, GETNCNT, GETPID, IPC_RMID.
func Semctl(id, num, cmd, arg int) (int, error) {
	return semctl(id, num, cmd, uintptr(SemunInt(int32(arg), int(unsafe.Sizeof(uintptr(0))), nativeOrder())))
}

// SemctlStat is semctl(IPC_STAT).
func SemctlStat(id int, ds *SemidDs) error {
	return semctlPtr(id, 0, unix.IPC_STAT, unsafe.Pointer(ds))
}

// nativeOrder returns binary.LittleEndian or binary.BigEndian, whichever
// this machine uses (binary.NativeEndian is neither value).
func nativeOrder() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}
