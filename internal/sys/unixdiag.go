//go:build linux

package sys

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// From linux/unix_diag.h, which golang.org/x/sys/unix does not carry.
const (
	udiagShowPeer = 0x04
	udiagShowUID  = 0x40
	unixDiagPeer  = 2
	unixDiagUID   = 7

	sizeofUnixDiagReq = 24
	sizeofUnixDiagMsg = 16
)

// ErrNoSocketOwner is returned by UnixPeerOwner when the kernel does not
// report sockets' owners (UNIX_DIAG_UID, Linux 5.3 and later).
var ErrNoSocketOwner = errors.New("the kernel does not report the owners of Unix sockets (UNIX_DIAG_UID needs Linux 5.3)")

// UnixPeerOwner returns the uid that owns the socket the connected Unix
// socket fd is connected to (the uid of the process that made it), asking
// the kernel through NETLINK_SOCK_DIAG. It works where SO_PEERCRED does
// not: on a datagram socket connected with connect(2).
func UnixPeerOwner(fd int) (int, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return -1, err
	}
	nl, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, fmt.Errorf("netlink sock_diag: %w", err)
	}
	defer unix.Close(nl)
	// The kernel answers at once; the timeout only bounds the unexpected.
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(nl, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	attrs, err := unixDiag(nl, 1, uint32(st.Ino), udiagShowPeer)
	if err != nil {
		return -1, err
	}
	peer, ok := attrs[unixDiagPeer]
	if !ok || len(peer) < 4 || binary.NativeEndian.Uint32(peer) == 0 {
		return -1, fmt.Errorf("the socket is not connected: %w", unix.ENOTCONN)
	}
	attrs, err = unixDiag(nl, 2, binary.NativeEndian.Uint32(peer), udiagShowUID)
	if err != nil {
		return -1, err
	}
	uid, ok := attrs[unixDiagUID]
	if !ok || len(uid) < 4 {
		return -1, ErrNoSocketOwner
	}
	return int(binary.NativeEndian.Uint32(uid)), nil
}

// unixDiag asks for the Unix socket with inode ino and returns the
// attributes show asked for, by type.
func unixDiag(nl int, seq, ino, show uint32) (map[uint16][]byte, error) {
	req := make([]byte, unix.NLMSG_HDRLEN+sizeofUnixDiagReq)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], seq)
	d := req[unix.NLMSG_HDRLEN:]
	d[0] = unix.AF_UNIX
	ne.PutUint32(d[4:], ^uint32(0)) // every state
	ne.PutUint32(d[8:], ino)
	ne.PutUint32(d[12:], show)
	ne.PutUint32(d[16:], ^uint32(0)) // no cookie
	ne.PutUint32(d[20:], ^uint32(0))
	if err := unix.Sendto(nl, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("netlink sock_diag: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(nl, buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("netlink sock_diag: %w", err)
		}
		for b := buf[:n]; len(b) >= unix.NLMSG_HDRLEN; {
			l := int(ne.Uint32(b))
			if l < unix.NLMSG_HDRLEN || l > len(b) {
				return nil, fmt.Errorf("netlink sock_diag: a malformed answer")
			}
			typ, mseq, data := ne.Uint16(b[4:]), ne.Uint32(b[8:]), b[unix.NLMSG_HDRLEN:l]
			b = b[min(len(b), (l+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
			if mseq != seq {
				continue // an answer to an earlier question
			}
			switch typ {
			case unix.NLMSG_ERROR:
				if len(data) >= 4 {
					if e := int32(ne.Uint32(data)); e < 0 {
						return nil, fmt.Errorf("netlink sock_diag: %w", unix.Errno(-e))
					}
				}
				return nil, fmt.Errorf("netlink sock_diag: an empty answer")
			case unix.SOCK_DIAG_BY_FAMILY:
				if len(data) < sizeofUnixDiagMsg || ne.Uint32(data[4:]) != ino {
					return nil, fmt.Errorf("netlink sock_diag: an answer about another socket")
				}
				return parseAttrs(data[sizeofUnixDiagMsg:]), nil
			}
		}
	}
}

// parseAttrs splits netlink attributes (struct rtattr) by type.
func parseAttrs(b []byte) map[uint16][]byte {
	attrs := map[uint16][]byte{}
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b))
		if l < unix.SizeofRtAttr || l > len(b) {
			break
		}
		attrs[binary.NativeEndian.Uint16(b[2:])] = b[unix.SizeofRtAttr:l]
		b = b[min(len(b), (l+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return attrs
}
