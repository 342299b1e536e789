//go:build linux

package sys

import (
	"encoding/binary"
	"math"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Flags of msgrcv that x/sys/unix does not define.
const (
	MSG_NOERROR = 0o10000 // truncate a longer message instead of failing with E2BIG
	MSG_EXCEPT  = 0o20000 // receive the first message whose type differs from msgtyp
	MSG_COPY    = 0o40000 // copy the message at position msgtyp without removing it
)

// MtypeSize is the size of struct msgbuf's mtype, a C long: 8 bytes on
// 64-bit Linux, 4 on 32-bit (a Go int is a C long on every Linux
// architecture). The message text follows it.
const MtypeSize = int(unsafe.Sizeof(int(0)))

// MaxMtype is the largest message type a C long holds.
const MaxMtype = math.MaxInt

// AppendMtype appends the message type typ to b as struct msgbuf's mtype:
// a native-endian C long. typ must be between 1 and MaxMtype.
func AppendMtype(b []byte, typ int64) []byte {
	if MtypeSize == 4 {
		return binary.NativeEndian.AppendUint32(b, uint32(typ))
	}
	return binary.NativeEndian.AppendUint64(b, uint64(typ))
}

// Mtype returns the message type at the start of b, a struct msgbuf, as
// msgrcv filled it.
func Mtype(b []byte) int64 {
	if MtypeSize == 4 {
		return int64(int32(binary.NativeEndian.Uint32(b)))
	}
	return int64(binary.NativeEndian.Uint64(b))
}

// AppendMtypeAs is AppendMtype for a C long of size bytes (4 or 8) in
// byte order order: the layout of another architecture.
func AppendMtypeAs(b []byte, typ int64, size int, order binary.AppendByteOrder) []byte {
	if size == 4 {
		return order.AppendUint32(b, uint32(typ))
	}
	return order.AppendUint64(b, uint64(typ))
}

// MtypeAs is Mtype for a C long of size bytes (4 or 8) in byte order
// order.
func MtypeAs(b []byte, size int, order binary.ByteOrder) int64 {
	if size == 4 {
		return int64(int32(order.Uint32(b)))
	}
	return int64(order.Uint64(b))
}

// Msgget is the msgget system call: the identifier of the queue with key
// (a new one for IPCPrivate), created if flags has IPC_CREAT, with the
// permission bits in flags' low nine bits.
func Msgget(key Key, flags int) (int, error) { return msgget(key, flags) }

// Msgsnd is the msgsnd system call. msg is the whole struct msgbuf: the
// message type (> 0) as AppendMtype writes it, MtypeSize bytes, followed
// by the text. With IPC_NOWAIT in flags a full queue gives EAGAIN.
func Msgsnd(id int, msg []byte, flags int) error {
	if len(msg) < MtypeSize {
		return unix.EINVAL
	}
	return msgsnd(id, unsafe.Pointer(&msg[0]), len(msg)-MtypeSize, flags)
}

// Msgrcv is the msgrcv system call. buf receives the whole struct msgbuf
// (the type in its first MtypeSize bytes, read by Mtype) and must be at
// least that long; the returned n counts the text only. typ selects as msgrcv(2) says: 0 the
// first message, > 0 the first of that type (or of any other type with
// MSG_EXCEPT), < 0 the first of the lowest type up to -typ. With IPC_NOWAIT
// an empty queue gives ENOMSG; a typ a C long cannot hold (on 32-bit
// Linux) gives EINVAL.
func Msgrcv(id int, buf []byte, typ int64, flags int) (n int, err error) {
	if len(buf) < MtypeSize || int64(int(typ)) != typ {
		return 0, unix.EINVAL
	}
	return msgrcv(id, unsafe.Pointer(&buf[0]), len(buf)-MtypeSize, int(typ), flags)
}

// MsgctlStat is msgctl(IPC_STAT).
func MsgctlStat(id int, ds *MsqidDs) error {
	return msgctl(id, unix.IPC_STAT, unsafe.Pointer(ds))
}

// MsgctlSet is msgctl(IPC_SET): it changes the owner, mode and capacity
// (Qbytes) from ds.
func MsgctlSet(id int, ds *MsqidDs) error {
	return msgctl(id, unix.IPC_SET, unsafe.Pointer(ds))
}

// MsgctlRmid is msgctl(IPC_RMID): it removes the queue at once; blocked
// callers get EIDRM.
func MsgctlRmid(id int) error {
	return msgctl(id, unix.IPC_RMID, nil)
}
