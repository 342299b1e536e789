//go:build linux

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// RecvTrunc receives one datagram into buf with recv(MSG_TRUNC) and returns
// its full length, which exceeds len(buf) if the datagram did not fit (the
// rest is lost). Unlike unix.Recvfrom it allocates nothing.
func RecvTrunc(fd int, buf []byte) (int, error) {
	var p unsafe.Pointer
	if len(buf) > 0 {
		p = unsafe.Pointer(&buf[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(p), uintptr(len(buf)), unix.MSG_TRUNC, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// PeekLen returns the full length of the next datagram or record queued
// on the non-blocking socket fd, leaving it queued (recv with MSG_PEEK and
// MSG_TRUNC into no buffer). It returns 0 for an empty record and at the
// end of a seqpacket stream, and EAGAIN when nothing is queued.
func PeekLen(fd int) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), 0, 0, unix.MSG_PEEK|unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Recvmsg reads into p with recvmsg(2), taking control messages into oob,
// with MSG_CMSG_CLOEXEC so that received descriptors are close-on-exec.
// It asks for no source address, so unlike unix.Recvmsg it never
// allocates. It returns the data and control bytes read and the message
// flags (MSG_CTRUNC says descriptors were lost for want of room in oob).
func Recvmsg(fd int, p, oob []byte) (n, oobn, flags int, err error) {
	return recvmsg(fd, p, oob, unix.MSG_CMSG_CLOEXEC)
}

// RecvmsgTrunc receives one datagram or record into p with
// recvmsg(MSG_TRUNC), taking control messages into oob (with
// MSG_CMSG_CLOEXEC). It returns the datagram's full length, which exceeds
// len(p) if it did not fit (the rest is lost), and the control bytes read.
// It allocates nothing.
func RecvmsgTrunc(fd int, p, oob []byte) (n, oobn int, err error) {
	n, oobn, _, err = recvmsg(fd, p, oob, unix.MSG_TRUNC|unix.MSG_CMSG_CLOEXEC)
	return n, oobn, err
}

// recvmsg is recvmsg(2) into one buffer, asking for no source address.
func recvmsg(fd int, p, oob []byte, flags int) (n, oobn, msgFlags int, err error) {
	var iov unix.Iovec
	if len(p) > 0 {
		iov.Base = &p[0]
		iov.SetLen(len(p))
	}
	var msg unix.Msghdr
	msg.Iov = &iov
	msg.Iovlen = 1
	if len(oob) > 0 {
		msg.Control = &oob[0]
		msg.SetControllen(len(oob))
	}
	r, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&msg)), uintptr(flags))
	if errno != 0 {
		return 0, 0, 0, errno
	}
	return int(r), int(msg.Controllen), int(msg.Flags), nil
}

// UcredOf returns the credentials (SCM_CREDENTIALS) among the control
// messages in oob, as recvmsg filled it, and whether there were any. It
// allocates nothing.
func UcredOf(oob []byte) (unix.Ucred, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return unix.Ucred{}, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_CREDENTIALS && len(data) >= unix.SizeofUcred {
			return *(*unix.Ucred)(unsafe.Pointer(&data[0])), true
		}
		oob = rest
	}
	return unix.Ucred{}, false
}
