package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Flags of msgrcv that x/sys/unix does not define.
const (
	MSG_NOERROR = 0o10000 // truncate a longer message instead of failing with E2BIG
	MSG_EXCEPT  = 0o20000 // receive the first message whose type differs from msgtyp
	MSG_COPY    = 0o40000 // copy the message at position msgtyp without removing it
)

// MsqidDs is struct msqid64_ds, what msgctl(IPC_STAT) reports.
type MsqidDs struct {
	Perm   unix.SysvIpcPerm
	Stime  int64  // last msgsnd
	Rtime  int64  // last msgrcv
	Ctime  int64  // last change
	Cbytes uint64 // bytes queued now
	Qnum   uint64 // messages queued now
	Qbytes uint64 // capacity in bytes
	Lspid  int32  // pid of the last msgsnd
	Lrpid  int32  // pid of the last msgrcv
	_      [2]uint64
}

// Msgget is the msgget system call: the identifier of the queue with key
// (a new one for IPCPrivate), created if flags has IPC_CREAT, with the
// permission bits in flags' low nine bits.
func Msgget(key Key, flags int) (int, error) {
	id, _, errno := unix.Syscall(unix.SYS_MSGGET, uintptr(key), uintptr(flags), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(id), nil
}

// Msgsnd is the msgsnd system call. msg is the whole struct msgbuf: a
// native-endian long message type (> 0) followed by the text; its length
// must be at least 8. With IPC_NOWAIT in flags a full queue gives EAGAIN.
func Msgsnd(id int, msg []byte, flags int) error {
	if len(msg) < 8 {
		return unix.EINVAL
	}
	_, _, errno := unix.Syscall6(unix.SYS_MSGSND, uintptr(id), uintptr(unsafe.Pointer(&msg[0])), uintptr(len(msg)-8), uintptr(flags), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// Msgrcv is the msgrcv system call. buf receives the whole struct msgbuf
// (the type in its first 8 bytes) and must be at least 8 bytes long; the
// returned n counts the text only. typ selects as msgrcv(2) says: 0 the
// first message, > 0 the first of that type (or of any other type with
// MSG_EXCEPT), < 0 the first of the lowest type up to -typ. With IPC_NOWAIT
// an empty queue gives ENOMSG.
func Msgrcv(id int, buf []byte, typ int64, flags int) (n int, err error) {
	if len(buf) < 8 {
		return 0, unix.EINVAL
	}
	r, _, errno := unix.Syscall6(unix.SYS_MSGRCV, uintptr(id), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)-8), uintptr(typ), uintptr(flags), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// MsgctlStat is msgctl(IPC_STAT).
func MsgctlStat(id int, ds *MsqidDs) error {
	_, _, errno := unix.Syscall(unix.SYS_MSGCTL, uintptr(id), unix.IPC_STAT, uintptr(unsafe.Pointer(ds)))
	if errno != 0 {
		return errno
	}
	return nil
}

// MsgctlSet is msgctl(IPC_SET): it changes the owner, mode and capacity
// (Qbytes) from ds.
func MsgctlSet(id int, ds *MsqidDs) error {
	_, _, errno := unix.Syscall(unix.SYS_MSGCTL, uintptr(id), unix.IPC_SET, uintptr(unsafe.Pointer(ds)))
	if errno != 0 {
		return errno
	}
	return nil
}

// MsgctlRmid is msgctl(IPC_RMID): it removes the queue at once; blocked
// callers get EIDRM.
func MsgctlRmid(id int) error {
	_, _, errno := unix.Syscall(unix.SYS_MSGCTL, uintptr(id), unix.IPC_RMID, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
