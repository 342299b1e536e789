package endpoints

import (
	"context"
	"fmt"
	"net"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
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
// On an abstract name, which has no file permission, the receiver reads
// the sender's credentials with every datagram and drops, undelivered and
// counted by [RefusedDatagrams], each one whose sender is not running as
// this process's user (an end-of-stream marker included), unless
// [AnyUser], [AllowIDs] or ipcchan.WithPeerCheck says otherwise; on a path
// the file's permission decides, and a check is made only if one of them
// asks for it. A path is refused as by [Listen] when its directory is
// missing or not writable, or when it is too long.
//
// Options: those of a Receiver (WithCodec, WithMaxMessageSize,
// WithHandshake, WithForeignPeer), WithSenders (refused with
// WithForeignPeer, which sends no marker), on unixgram WithPeerCheck, and
// on a path WithPerm.
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
		return nil, "", opErr("listen", desc, err)
	}
	allowed := optMsgRecv
	if kind == unixgramKind {
		allowed |= transport.OptPeerCheck
		if !isAbstract(address) {
			allowed |= optCreate
		}
	}
	cfg, err := newConfig("listen", desc, allowed, opts)
	if err != nil {
		return nil, "", err
	}
	var fd int
	var path *unixPath
	if kind == udpKind {
		var lc net.ListenConfig
		pc, err := lc.ListenPacket(ctx, network, address)
		if err != nil {
			return nil, "", wrapErr("listen", desc, unwrapNetErr(err))
		}
		address = pc.LocalAddr().String()
		desc = network + " " + address
		if fd, err = takeFD(pc); err != nil {
			return nil, "", opErr("listen", desc, err)
		}
	} else {
		if fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
			return nil, "", opErr("socket", desc, err)
		}
		if peerCheckFor(cfg, network, address) != nil {
			// Before binding: every datagram then carries its sender's
			// credentials, which the receiver checks.
			if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
				unix.Close(fd)
				return nil, "", &ipcchan.OpError{Op: "listen", Endpoint: desc, Err: fmt.Errorf("SO_PASSCRED, which the peer check needs: %w", err)}
			}
		}
		if isAbstract(address) {
			err = unix.Bind(fd, &unix.SockaddrUnix{Name: address})
		} else {
			path, err = bindUnixPath(fd, address, unix.SOCK_DGRAM, cfg.Perm())
		}
		if err != nil {
			unix.Close(fd)
			return nil, "", wrapErr("listen", desc, err)
		}
	}
	rx, err := newDgramReceiverOn[T](fd, desc, kind, path, cfg)
	return rx, address, err
}

// DialPacket connects a datagram socket to a receiver made with
// [ListenPacket] and returns a Sender whose every message is one datagram.
// A message too large for one datagram is refused before sending with
// ErrMessageTooLarge. Close sends the end-of-stream marker. On "unixgram",
// Send waits while the receiver's queue is full; on UDP it never does.
// With ipcchan.WithForeignPeer (on both ListenPacket and DialPacket, to
// talk to a program that is not ipcchan) a datagram is exactly the
// message's bytes: no tag word, no marker. Options: those of a Sender,
// WithLinger (refused with WithForeignPeer, which sends no marker), and
// on unixgram WithPeerCheck.
//
// On an abstract unixgram name, DialPacket refuses a receiving socket that
// another user owns with an error wrapping ErrPeerRefused, unless
// [AnyUser], [AllowIDs] or ipcchan.WithPeerCheck says otherwise (on a path
// it checks only if one of them asks). A connected datagram socket has no
// SO_PEERCRED: the owner's uid comes from the kernel's socket diagnostics
// (NETLINK_SOCK_DIAG, Linux 5.3 or later), and the check sees PID 0 and
// GID -1, which they do not report. Where the kernel cannot tell, the
// check sees UID -1 too: the default refuses to send unchecked, AnyUser
// sends anyway.
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
		return nil, opErr("dial", desc, err)
	}
	allowed := optMsgSend
	if kind == unixgramKind {
		allowed |= transport.OptPeerCheck | optWait
	}
	cfg, err := newConfig("dial", desc, allowed, opts)
	if err != nil {
		return nil, err
	}
	fd, _, err := dialWaiting(ctx, cfg, network, address, desc)
	if err != nil {
		return nil, err
	}
	if check := peerCheckFor(cfg, network, address); check != nil && kind == unixgramKind {
		if err := checkReceiver(fd, check); err != nil {
			unix.Close(fd)
			return nil, opErr("dial", desc, err)
		}
	}
	return newDgramSenderOn[T](fd, desc, kind, false, cfg)
}

// checkReceiver applies check to the owner of the socket that fd, a
// connected unixgram socket, sends to. An owner the kernel cannot tell is
// UID -1, which only a check that admits anyone (AnyUser) lets through.
func checkReceiver(fd int, check func(ipcchan.PeerCred) error) error {
	uid, err := sys.UnixPeerOwner(fd)
	if err != nil {
		uid = -1
	}
	switch cerr := check(ipcchan.PeerCred{UID: uid, GID: -1}); {
	case cerr == nil:
		return nil
	case err != nil:
		return fmt.Errorf("%w: cannot tell who owns the receiving socket (%w), and the peer check refuses an unknown owner (endpoints.AnyUser sends anyway): %w", ErrPeerRefused, err, cerr)
	default:
		return fmt.Errorf("%w: the receiving socket's owner: %w", ErrPeerRefused, cerr)
	}
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
func newDgramSenderOn[T any](fd int, desc string, kind dgramKind, inherited bool, cfg *transport.Config) (*ipcchan.Sender[T], error) {
	pfd, err := poller.Open(fd, desc)
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	ds := newDgramSender(pfd, desc, kind, cfg)
	ds.noShutdown = inherited
	if err := firstErr(checkTagOption(cfg, ds, desc), markerlessIf(kind.marker, desc, cfg)); err != nil {
		pfd.Close()
		return nil, err
	}
	tx, err := ipcchan.NewSender[T](ds, cfg.Options(transport.SenderOptions)...)
	if err != nil {
		pfd.Close()
		return nil, err
	}
	return tx, nil
}

// newDgramReceiverOn returns a Receiver on fd, a bound or connected message
// socket, which it owns (closed on error too), with the socket file to
// remove on Close, if any.
func newDgramReceiverOn[T any](fd int, desc string, kind dgramKind, path *unixPath, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	pfd, err := poller.Open(fd, desc)
	if err != nil {
		if path != nil {
			path.Close()
		}
		return nil, opErr("open", desc, err)
	}
	r := newDgramReceiver(pfd, desc, kind, cfg)
	r.path = path
	if err := markerlessIf(kind.marker, desc, cfg); err != nil {
		r.Close()
		return nil, err
	}
	if err := r.checkSenders(cfg.PeerCheck()); err != nil {
		r.Close()
		return nil, opErr("open", desc, err)
	}
	rx, err := ipcchan.NewReceiver[T](r, cfg.Options(transport.ReceiverOptions)...)
	if err != nil {
		r.Close()
		return nil, err
	}
	return rx, nil
}

// markerlessIf is checkMarkerless for a socket whose end of stream is a
// marker (marker true): a connectionless one.
func markerlessIf(marker bool, desc string, cfg *transport.Config) error {
	if !marker {
		return nil
	}
	return checkMarkerless("open", desc, cfg)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
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
