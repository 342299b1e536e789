//go:build linux && (386 || ppc64 || ppc64le || s390x || mips || mipsle)

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The SysV IPC calls through the multiplexing ipc(2) system call, the only
// way on these architectures before Linux 5.1 (which added semget, msgsnd
// and the others as calls of their own, but never semop: 386 and 32-bit
// mips have only semtimedop_time64 besides ipc). glibc does the same.

// ipc(2)'s call numbers, from linux/ipc.h. The version in the call's high
// 16 bits is 0: s390x refuses any other, and for MSGRCV version 0 means
// the message pointer and type come in a struct ipc_kludge.
const (
	ipcSemop  = 1
	ipcSemget = 2
	ipcSemctl = 3
	ipcMsgsnd = 11
	ipcMsgrcv = 12
	ipcMsgget = 13
	ipcMsgctl = 14
)

// ctlCmd returns the command semctl and msgctl take for cmd: through
// ipc(2) the kernel reads the version of the structures from the command
// (ipc_parse_version), and without IPC_64 it fills the old layouts, not
// the 64-bit ones this package declares.
func ctlCmd(cmd int) int { return cmd | ipc64 }

// ipc is ipc(2): call with its arguments, ptr the pointer one.
func ipc(call int, first, second, third uintptr, ptr unsafe.Pointer) (uintptr, error) {
	r, _, errno := unix.Syscall6(unix.SYS_IPC, uintptr(call), first, second, third, uintptr(ptr), 0)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

func semget(key Key, nsems, flags int) (int, error) {
	id, err := ipc(ipcSemget, uintptr(key), uintptr(nsems), uintptr(flags), nil)
	if err != nil {
		return -1, err
	}
	return int(id), nil
}

func semop(id int, ops unsafe.Pointer, n int) error {
	_, err := ipc(ipcSemop, uintptr(id), uintptr(n), 0, ops)
	return err
}

// semctl passes arg as the union semun: ipc(2) takes it by reference.
func semctl(id, num, cmd int, arg uintptr) (int, error) {
	r, err := ipc(ipcSemctl, uintptr(id), uintptr(num), uintptr(ctlCmd(cmd)), unsafe.Pointer(&arg))
	if err != nil {
		return 0, err
	}
	return int(r), nil
}

// semctlPtr passes p as the union semun's pointer, by reference.
func semctlPtr(id, num, cmd int, p unsafe.Pointer) error {
	_, err := ipc(ipcSemctl, uintptr(id), uintptr(num), uintptr(ctlCmd(cmd)), unsafe.Pointer(&p))
	return err
}

func msgget(key Key, flags int) (int, error) {
	id, err := ipc(ipcMsgget, uintptr(key), uintptr(flags), 0, nil)
	if err != nil {
		return -1, err
	}
	return int(id), nil
}

func msgsnd(id int, msg unsafe.Pointer, size, flags int) error {
	_, err := ipc(ipcMsgsnd, uintptr(id), uintptr(size), uintptr(flags), msg)
	return err
}

// ipcKludge is struct ipc_kludge: msgrcv's buffer and type, which ipc(2)
// version 0 takes by reference.
type ipcKludge struct {
	msgp unsafe.Pointer
	typ  int // C long
}

func msgrcv(id int, msg unsafe.Pointer, size, typ, flags int) (int, error) {
	k := ipcKludge{msgp: msg, typ: typ}
	r, err := ipc(ipcMsgrcv, uintptr(id), uintptr(size), uintptr(flags), unsafe.Pointer(&k))
	if err != nil {
		return 0, err
	}
	return int(r), nil
}

func msgctl(id, cmd int, ds unsafe.Pointer) error {
	_, err := ipc(ipcMsgctl, uintptr(id), uintptr(ctlCmd(cmd)), 0, ds)
	return err
}
