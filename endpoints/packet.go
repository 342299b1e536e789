package endpoints

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/ipcchan/internal/poller"
	"github.com/ipcchan/ipcchan/ipcchan"
)

// ListenPacket binds a datagram socket and returns a Receiver of the
// messages sent to it, one message per datagram, with the address it is
// bound to (the port filled in for UDP port 0).
//
// network is "unixgram" (address a path, made 0600 and guarded as for
// [Listen], or "@name" in the abstract namespace) or "udp", "udp4", "udp6"
// (host:port). A datagram socket has no kernel end of stream: each
// sender's Close sends a marker, and the Receiver returns io.EOF after
// ipcchan.WithSenders(n) of them (default 1). A datagram over the size
// limit is discarded and reported with ErrFrameTooLarge.
//
// UDP is lossy and unordered: the kernel drops datagrams when the
// receiver's buffer is full, without telling the sender, and an end marker
// can be lost like any other datagram. Use it where that is acceptable.
//
// A path is refused as by [Listen] when its directory is missing or not
// writable, or when it is too long.
func ListenPacket[T any](ctx context.Context, network, address string, opts ...ipcchan.Option) (*ipcchan.Receiver[T], string, error) {
	if ctx == nil {
		return nil, "", &ipcchan.OpError{Op: "listen", Endpoint: network + " " + address, Err: errNilContext}
	}
	kind, err := packetKind(network)
	if err != nil {
		return nil, "", err
	}
	desc := network + " " + address
	if err := checkUnixAddress(network, address); err != nil {
		return nil, "", &ipcchan.OpError{Op: "listen", Endpoint: desc, Err: err}
	}
	cfg := ipcchan.NewConfig(opts...)
	var fd int
	var path *unixPath
	if kind == udpKind {
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(ctx, network, address)
		if err != nil {
			return nil, "", ipcchan.WrapError("listen", desc, unwrapNetErr(err))
		}
		address = pc.LocalAddr().String()
		desc = network + " " + address
		if fd, err = takeFD(pc); err != nil {
			return nil, "", &ipcchan.OpError{Op: "listen", Endpoint: desc, Err: err}
		}
	} else {
		if fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
			return nil, "", &ipcchan.OpError{Op: "socket", Endpoint: desc, Err: err}
		}
		if isAbstract(address) {
			err = unix.Bind(fd, &unix.SockaddrUnix{Name: address})
		} else {
			path, err = bindUnixPath(fd, address, unix.SOCK_DGRAM, cfg.FilePerm())
		}
		if err != nil {
			unix.Close(fd)
			return nil, "", ipcchan.WrapError("listen", desc, err)
		}
	}
	rx, err := newDgramReceiverOn[T](fd, desc, kind, path, opts)
	return rx, address, err
}

// DialPacket connects a datagram socket to a receiver made with
// [ListenPacket] and returns a Sender whose every message is one datagram.
// A message too large for one datagram is refused before sending with
// ErrMessageTooLarge. Close sends the end-of-stream marker. On "unixgram",
// Send waits while the receiver's queue is full; on UDP it never does.
// With ipcchan.WithRawMessages (on both ListenPacket and DialPacket, to
// talk to a program that is not ipcchan) a datagram is exactly the
// message's bytes: no tag word, no marker.
func DialPacket[T any](ctx context.Context, network, address string, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	if ctx == nil {
		return nil, &ipcchan.OpError{Op: "dial", Endpoint: network + " " + address, Err: errNilContext}
	}
	kind, err := packetKind(network)
	if err != nil {
		return nil, err
	}
	desc := network + " " + address
	if err := checkUnixAddress(network, address); err != nil {
		return nil, &ipcchan.OpError{Op: "dial", Endpoint: desc, Err: err}
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, ipcchan.WrapError("dial", desc, unwrapNetErr(err))
	}
	fd, err := takeFD(nc)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "dial", Endpoint: desc, Err: err}
	}
	return newDgramSenderOn[T](fd, desc, kind, false, opts)
}

func packetKind(network string) (dgramKind, error) {
	switch network {
	case "unixgram":
		return unixgramKind, nil
	case "udp", "udp4", "udp6":
		return udpKind, nil
	}
	return dgramKind{}, fmt.Errorf("ipcchan: datagram network %q: want unixgram, udp, udp4 or udp6 (unixpacket goes through Listen and Dial)", network)
}

// newDgramSenderOn returns a Sender on fd, a connected message socket, which
// it owns (closed on error too). inherited says other processes may hold
// the socket too.
func newDgramSenderOn[T any](fd int, desc string, kind dgramKind, inherited bool, opts []ipcchan.Option) (*ipcchan.Sender[T], error) {
	pfd, err := poller.Open(fd, desc)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: err}
	}
	ds := newDgramSender(pfd, desc, kind, ipcchan.NewConfig(opts...))
	ds.noShutdown = inherited
	tx, err := ipcchan.NewSender[T](ds, opts...)
	if err != nil {
		pfd.Close()
		return nil, err
	}
	return tx, nil
}

// newDgramReceiverOn returns a Receiver on fd, a bound or connected message
// socket, which it owns (closed on error too), with the socket file to
// remove on Close, if any.
func newDgramReceiverOn[T any](fd int, desc string, kind dgramKind, path *unixPath, opts []ipcchan.Option) (*ipcchan.Receiver[T], error) {
	pfd, err := poller.Open(fd, desc)
	if err != nil {
		if path != nil {
			path.Close()
		}
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: err}
	}
	r := newDgramReceiver(pfd, desc, kind, ipcchan.NewConfig(opts...))
	r.path = path
	rx, err := ipcchan.NewReceiver[T](r, opts...)
	if err != nil {
		r.Close()
		return nil, err
	}
	return rx, nil
}

// messageKindOf tells the kind of an inherited message socket.
func messageKindOf(fd, typ int) dgramKind {
	if typ == unix.SOCK_SEQPACKET {
		return unixpacketKind
	}
	if dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err == nil && dom != unix.AF_UNIX {
		return udpKind
	}
	return unixgramKind
}
