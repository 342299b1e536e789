//go:build linux && !(386 || ppc64 || ppc64le || s390x || mips || mipsle)

package sys

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The SysV IPC calls as the system calls of their own that these
// architectures have (sysv_ipc.go has the others, which multiplex them
// through ipc(2)).

// ctlCmd returns the command semctl, msgctl and shmctl take for cmd. arm and
// mips64 (n64) keep the old entry points, which read the version of the
// structures from the command (the kernel's ipc_parse_version): without
// IPC_64 they fill the old layouts, not the 64-bit ones this package
// declares. golang.org/x/sys/unix's SysvShmCtl does the same. Elsewhere the
// command is taken as it is (IPC_64 there would be an unknown command).
func ctlCmd(cmd int) int {
	if runtime.GOARCH == "arm" || runtime.GOARCH == "mips64" || runtime.GOARCH == "mips64le" {
		return cmd | ipc64
	}
	return cmd
}

func semget(key Key, nsems, flags int) (int, error) {
	id, _, errno := unix.Syscall(unix.SYS_SEMGET, uintptr(key), uintptr(nsems), uintptr(flags))
	if errno != 0 {
		return -1, errno
	}
	return int(id), nil
}

func semop(id int, ops unsafe.Pointer, n int) error {
	_, _, errno := unix.Syscall(unix.SYS_SEMOP, uintptr(id), uintptr(ops), uintptr(n))
	if errno != 0 {
		return errno
	}
	return nil
}

// semctl passes arg as the union semun, by value.
func semctl(id, num, cmd int, arg uintptr) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), uintptr(num), uintptr(ctlCmd(cmd)), arg, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// semctlPtr passes p as the union semun's pointer.
func semctlPtr(id, num, cmd int, p unsafe.Pointer) error {
	_, _, errno := unix.Syscall6(unix.SYS_SEMCTL, uintptr(id), uintptr(num), uintptr(ctlCmd(cmd)), uintptr(p), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func msgget(key Key, flags int) (int, error) {
	id, _, errno := unix.Syscall(unix.SYS_MSGGET, uintptr(key), uintptr(flags), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(id), nil
}

func msgsnd(id int, msg unsafe.Pointer, size, flags int) error {
	_, _, errno := unix.Syscall6(unix.SYS_MSGSND, uintptr(id), uintptr(msg), uintptr(size), uintptr(flags), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func msgrcv(id int, msg unsafe.Pointer, size, typ, flags int) (int, error) {
	r, _, errno := unix.Syscall6(unix.SYS_MSGRCV, uintptr(id), uintptr(msg), uintptr(size), uintptr(typ), uintptr(flags), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

func msgctl(id, cmd int, ds unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_MSGCTL, uintptr(id), uintptr(ctlCmd(cmd)), uintptr(ds))
	if errno != 0 {
		return errno
	}
	return nil
}
