//go:build linux

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// MqAttr is struct mq_attr: a POSIX message queue's flags (O_NONBLOCK),
// capacity in messages, largest message in bytes, and messages queued now.
// Its fields are C longs (a Go int on every Linux architecture): 4 bytes
// on 32-bit Linux.
type MqAttr struct {
	Flags   int
	Maxmsg  int
	Msgsize int
	Curmsgs int
	_       [4]int
}

// MqPrioMax bounds message priorities: they run from 0 to MqPrioMax-1.
const MqPrioMax = 32768

// MqOpen is the mq_open system call. name is the kernel's form, without
// the leading slash that the C library's mq_open strips. attr may be nil
// for the system defaults. It returns the queue descriptor, which on Linux
// is a file descriptor that poll and epoll report readable while messages
// are queued and writable while there is room.
func MqOpen(name string, flags int, mode uint32, attr *MqAttr) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	fd, _, errno := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafe.Pointer(p)), uintptr(flags), uintptr(mode), uintptr(unsafe.Pointer(attr)), 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// MqUnlink is the mq_unlink system call, with name in the kernel's form.
func MqUnlink(name string) error {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall(unix.SYS_MQ_UNLINK, uintptr(unsafe.Pointer(p)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// MqTimedsend is mq_timedsend: it queues msg with priority prio, waiting
// until abs (nil: without limit) when the queue is full, unless the
// descriptor is non-blocking (then it returns EAGAIN).
func MqTimedsend(mqd int, msg []byte, prio uint32, abs *unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_MQ_TIMEDSEND, uintptr(mqd), uintptr(bytesPtr(msg)), uintptr(len(msg)), uintptr(prio), uintptr(unsafe.Pointer(abs)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// MqTimedreceive is mq_timedreceive: it takes the oldest message of the
// highest priority into buf, which must hold the queue's largest message
// (EMSGSIZE otherwise), and returns its length and priority.
func MqTimedreceive(mqd int, buf []byte, abs *unix.Timespec) (n int, prio uint32, err error) {
	r, _, errno := unix.Syscall6(unix.SYS_MQ_TIMEDRECEIVE, uintptr(mqd), uintptr(bytesPtr(buf)), uintptr(len(buf)), uintptr(unsafe.Pointer(&prio)), uintptr(unsafe.Pointer(abs)), 0)
	if errno != 0 {
		return 0, 0, errno
	}
	return int(r), prio, nil
}

// MqGetsetattr is mq_getsetattr: it sets the flags from attr if attr is
// not nil (only O_NONBLOCK can change) and stores the previous attributes
// in old if old is not nil.
func MqGetsetattr(mqd int, attr, old *MqAttr) error {
	_, _, errno := unix.Syscall(unix.SYS_MQ_GETSETATTR, uintptr(mqd), uintptr(unsafe.Pointer(attr)), uintptr(unsafe.Pointer(old)))
	if errno != 0 {
		return errno
	}
	return nil
}

// Sigevent is struct sigevent in the forms mq_notify uses: no
// notification (SIGEV_NONE), or a signal (SIGEV_SIGNAL) with a value.
// It is 64 bytes on every architecture (SIGEV_MAX_SIZE); the value is a
// pointer, so the padding is 4 bytes longer on 32-bit Linux.
type Sigevent struct {
	Value  uintptr // sigev_value
	Signo  int32
	Notify int32
	_      [64 - 8 - unsafe.Sizeof(uintptr(0))]byte // the union the kernel ignores for these forms
}

// Notification kinds of Sigevent.Notify.
const (
	SigevSignal = 0
	SigevNone   = 1
)

// MqNotify is mq_notify: it registers the calling process for one
// notification when a message arrives in the empty queue (ev nil removes
// the registration). Only one process may be registered at a time (EBUSY).
func MqNotify(mqd int, ev *Sigevent) error {
	_, _, errno := unix.Syscall(unix.SYS_MQ_NOTIFY, uintptr(mqd), uintptr(unsafe.Pointer(ev)), 0)
	if errno != 0 {
		return errno
	}
	return nil
}

func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}
