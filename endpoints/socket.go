package endpoints

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// SameUser accepts only Unix socket peers running as this process's user
// (its real uid). It is the default on abstract names; on a path it adds
// the check to the socket file's permission. See the package
// documentation, "Who may reach a Unix socket".
func SameUser() ipcchan.Option {
	uid := os.Getuid()
	return ipcchan.WithPeerCheck(func(c ipcchan.PeerCred) error {
		if c.UID != uid {
			return fmt.Errorf("uid %d is not this process's uid %d", c.UID, uid)
		}
		return nil
	})
}

// AllowIDs accepts only Unix socket peers whose uid is in uids or whose gid
// is in gids. It replaces the default check: to keep admitting this
// process's own user, list os.Getuid() in uids.
func AllowIDs(uids, gids []int) ipcchan.Option {
	uids, gids = slices.Clone(uids), slices.Clone(gids) // the caller's later changes must not reach it
	return ipcchan.WithPeerCheck(func(c ipcchan.PeerCred) error {
		for _, u := range uids {
			if c.UID == u {
				return nil
			}
		}
		for _, g := range gids {
			if c.GID == g {
				return nil
			}
		}
		return fmt.Errorf("uid %d, gid %d not allowed", c.UID, c.GID)
	})
}

// AnyUser lets Unix socket peers of every user in: it turns off the
// default same-user check of abstract names, so that any process on the
// machine (in the same network namespace) can connect to a listener, send
// to a unixgram receiver, or be dialled. Peers' credentials are still read
// (Conn.PeerCred).
func AnyUser() ipcchan.Option {
	return ipcchan.WithPeerCheck(func(ipcchan.PeerCred) error { return nil })
}

// defaultPeerCheck returns the check of an abstract socket name made
// without a peer check option: it admits peers running as this process's
// real uid, read once, now (as SameUser does), not for every datagram.
func defaultPeerCheck() func(ipcchan.PeerCred) error {
	uid := os.Getuid()
	return func(c ipcchan.PeerCred) error {
		if c.UID != uid {
			return fmt.Errorf("uid %d is not this process's uid %d (an abstract socket name has no permissions, so only the same user is let in by default; endpoints.AllowIDs or endpoints.AnyUser let others in)", c.UID, uid)
		}
		return nil
	}
}

// peerCheckFor returns the peer check of a socket on network and address:
// the configured one, or the default for an abstract Unix name.
func peerCheckFor(cfg *transport.Config, network, address string) func(ipcchan.PeerCred) error {
	if cfg.PeerCheck() == nil && strings.HasPrefix(network, "unix") && isAbstract(address) {
		return defaultPeerCheck()
	}
	return cfg.PeerCheck()
}

// Conn is one connected stream socket: a typed channel each way, values of
// type S out and R in. It is safe for concurrent use (one goroutine may
// send while another receives).
//
// Each half takes, of the codecs given with ipcchan.WithCodec, the last
// that encodes its type, so that a Conn of two types can have a codec for
// each (WithCodec(codec.JSON[S]()), WithCodec(codec.JSON[R]())); a half
// that none encodes uses codec.Default, and a codec that encodes neither S
// nor R is refused with ipcchan.ErrOption.
type Conn[S, R any] struct {
	tx   *ipcchan.Sender[S]
	rx   *ipcchan.Receiver[R]
	cred *ipcchan.PeerCred
	desc string
}

// Sender returns the sending half. Closing it alone shuts the socket down
// for writing: the peer sees end of stream, and replies still arrive. (For
// a Conn nobody made, a Sender whose every call returns an error.)
func (c *Conn[S, R]) Sender() *ipcchan.Sender[S] {
	if c == nil || c.tx == nil {
		return new(ipcchan.Sender[S])
	}
	return c.tx
}

// Receiver returns the receiving half (for a Conn nobody made, a Receiver
// whose every call returns an error).
func (c *Conn[S, R]) Receiver() *ipcchan.Receiver[R] {
	if c == nil || c.rx == nil {
		return new(ipcchan.Receiver[R])
	}
	return c.rx
}

// Send sends v to the peer; see ipcchan.Sender.Send.
func (c *Conn[S, R]) Send(ctx context.Context, v S) error { return c.Sender().Send(ctx, v) }

// Recv receives the peer's next value; see ipcchan.Receiver.Recv.
func (c *Conn[S, R]) Recv(ctx context.Context) (R, error) { return c.Receiver().Recv(ctx) }

// PeerCred returns the credentials of the process at the other end of a
// Unix socket; ok is false for other sockets.
func (c *Conn[S, R]) PeerCred() (cred ipcchan.PeerCred, ok bool) {
	if c == nil || c.cred == nil {
		return ipcchan.PeerCred{}, false
	}
	return *c.cred, true
}

// String describes the connection.
func (c *Conn[S, R]) String() string {
	if c == nil || c.desc == "" {
		return "zero Conn"
	}
	return c.desc
}

// Close closes the sending half (flushing it, and telling the peer the
// stream ended) and then the receiving half. It is idempotent.
func (c *Conn[S, R]) Close() error {
	return errors.Join(c.Sender().Close(), c.Receiver().Close())
}

// File returns a duplicate of the socket, to hand the whole connection to
// another process with [Pass]; the child picks it up with [InheritConn].
func (c *Conn[S, R]) File() (*os.File, error) { return c.Receiver().File() }

// markHandedOff keeps Close from shutting the socket down under the
// process it was handed to.
func (c *Conn[S, R]) markHandedOff() { markHandedOff(c.tx) }

// newConn makes a Conn on fd, a connected non-blocking stream socket, which
// it owns (fd is closed on error too). The receiving half reads fd, the
// sending half writes a duplicate. mem, if not nil, is the receive memory
// of the listener that accepted it.
// newConn makes a Conn on fd, a connected non-blocking stream or seqpacket
// socket, which it owns (fd is closed on error too). check vets the peer of
// a Unix socket (nil: none). The receiving half reads fd, the sending half
// writes a duplicate.
func newConn[S, R any](fd int, desc string, cfg *transport.Config, check func(ipcchan.PeerCred) error, mem *connMemory) (*Conn[S, R], error) {
	txCfg, rxCfg, err := connSides[S, R](cfg)
	if err != nil {
		unix.Close(fd)
		return nil, opErr("open", desc, err)
	}
	cred, err := checkPeer(fd, check)
	if err != nil {
		unix.Close(fd)
		return nil, opErr("connect", desc, err)
	}
	wfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return nil, opErr("dup", desc, err)
	}
	var rx *ipcchan.Receiver[R]
	var tx *ipcchan.Sender[S]
	if typ, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); typ == unix.SOCK_SEQPACKET {
		// One message per record; the kernel ends the stream.
		if rx, err = newDgramReceiverOn[R](fd, desc, unixpacketKind, nil, rxCfg); err != nil {
			unix.Close(wfd)
			return nil, err
		}
		tx, err = newDgramSenderOn[S](wfd, desc, unixpacketKind, false, txCfg)
	} else {
		if rx, err = streamReceiverOn[R](fd, desc, socketKind, mem, rxCfg); err != nil {
			unix.Close(wfd)
			return nil, err
		}
		tx, err = newStreamSenderOn[S](wfd, desc, socketKind, txCfg)
	}
	if err != nil {
		rx.Close()
		return nil, err
	}
	return &Conn[S, R]{tx: tx, rx: rx, cred: cred, desc: desc}, nil
}

// connSides returns the configurations of a Conn's sending half, of values
// of type S, and of its receiving half, of type R: cfg's, but for the
// codecs, each half taking those given that encode its type (the last
// counts). A codec that encodes neither is refused.
func connSides[S, R any](cfg *transport.Config) (tx, rx *transport.Config, err error) {
	if !cfg.Given(transport.OptCodec) {
		return cfg, cfg, nil
	}
	var txOpts, rxOpts []ipcchan.Option
	for _, o := range cfg.Options(^transport.OptionName(0)) {
		if o.Name() != transport.OptCodec {
			txOpts, rxOpts = append(txOpts, o), append(rxOpts, o)
			continue
		}
		c, err := transport.NewConfig("", transport.OptCodec, []ipcchan.Option{o})
		if err != nil {
			return nil, nil, err
		}
		_, forS := c.Codec().(codec.Codec[S])
		_, forR := c.Codec().(codec.Codec[R])
		if !forS && !forR {
			return nil, nil, fmt.Errorf("%w: %s: codec %T encodes neither %v (sent) nor %v (received)",
				ipcchan.ErrOption, transport.OptCodec, c.Codec(), reflect.TypeFor[S](), reflect.TypeFor[R]())
		}
		if forS {
			txOpts = append(txOpts, o)
		}
		if forR {
			rxOpts = append(rxOpts, o)
		}
	}
	if tx, err = transport.NewConfig("", ^transport.OptionName(0), txOpts); err == nil {
		rx, err = transport.NewConfig("", ^transport.OptionName(0), rxOpts)
	}
	return tx, rx, err
}

// checkPeer reads SO_PEERCRED on a Unix socket and applies the configured
// check. It returns nil credentials for other sockets.
func checkPeer(fd int, check func(ipcchan.PeerCred) error) (*ipcchan.PeerCred, error) {
	if dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || dom != unix.AF_UNIX {
		return nil, nil
	}
	uc, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("SO_PEERCRED: %w", err)
	}
	cred := &ipcchan.PeerCred{PID: int(uc.Pid), UID: int(uc.Uid), GID: int(uc.Gid)}
	if check != nil {
		if err := check(*cred); err != nil {
			return nil, fmt.Errorf("%w: pid %d: %w", ErrPeerRefused, cred.PID, err)
		}
	}
	return cred, nil
}

// SocketPair returns the two ends of a connected Unix stream socket pair:
// what one sends (type S), the other receives. Hand one end to a child
// process with [Pass] and [Start]; it picks it up with [InheritConn]. Both
// ends take files sent with values (ipcchan.Sender.SendFiles) only if made
// with ipcchan.WithRecvFiles. Options: those of [Dial] on "unix", given to
// both ends.
func SocketPair[S, R any](opts ...ipcchan.Option) (*Conn[S, R], *Conn[R, S], error) {
	cfg, err := newConfig("socketpair", "a socket pair", optUnixConn, opts)
	if err != nil {
		return nil, nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &ipcchan.OpError{Op: "socketpair", Err: limitErr(err, descriptorKind)}
	}
	name := socketName(fds[0])
	a, err := newConn[S, R](fds[0], name+" end A", cfg, cfg.PeerCheck(), nil)
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := newConn[R, S](fds[1], name+" end B", cfg, cfg.PeerCheck(), nil)
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// Dial connects to a listening socket and returns the connection. network
// is "unix" (a stream; address a path, or "@name" for Linux's abstract
// namespace), "unixpacket" (sequenced packets: one message per record, the
// tag in the record), "tcp", "tcp4" or "tcp6" (address host:port). ctx bounds the
// connection attempt.
//
// Options: on TCP those of [PipePair]; on "unix" those, WithPeerCheck,
// WithRecvFiles, without which the kernel closes any descriptor the peer
// sends, and WithWaitForCreate (wait for the socket to be made and to
// listen; ctx ends that wait too); on "unixpacket" those of a Sender and a
// Receiver (WithCodec, WithTag, WithMaxMessageSize, WithHandshake,
// WithForeignPeer), WithPeerCheck and WithWaitForCreate — the kernel ends a
// seqpacket stream and Close holds nothing back, so WithSenders and
// WithLinger do not apply, and its records are no byte stream (no
// WithFraming, WithSendBuffer or WithAtomicWrites).
//
// On an abstract name, Dial refuses a listener running as another user
// with an error wrapping ErrPeerRefused, unless [AnyUser], [AllowIDs] or
// ipcchan.WithPeerCheck says otherwise; on a path there is no check unless
// one of them asks for one (whoever may create files in the socket's
// directory is trusted). A path longer than a socket address holds (108
// bytes) is refused with an error wrapping unix.ENAMETOOLONG.
func Dial[S, R any](ctx context.Context, network, address string, opts ...ipcchan.Option) (*Conn[S, R], error) {
	if ctx == nil {
		return nil, &ipcchan.OpError{Op: "dial", Endpoint: network + " " + address, Err: errNilContext}
	}
	if err := checkStreamNetwork(network); err != nil {
		return nil, err
	}
	desc := network + " " + address
	if err := checkUnixAddress(network, address); err != nil {
		return nil, opErr("dial", desc, err)
	}
	allowed := connOptions(network)
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		allowed |= optWait
	}
	cfg, err := newConfig("dial", desc, allowed, opts)
	if err != nil {
		return nil, err
	}
	check := peerCheckFor(cfg, network, address)
	fd, local, err := dialWaiting(ctx, cfg, network, address, desc)
	if err != nil {
		return nil, err
	}
	return newConn[S, R](fd, desc+" (from "+local+")", cfg, check, nil)
}

// dialWaiting is dialFD, waiting if cfg says so (ipcchan.WithWaitForCreate)
// for a Unix socket's file to be made (inotify on its directory) and for
// a socket that refuses connections to listen (polling: bind and listen
// are two steps, and only the first makes an event). ctx bounds the wait
// too.
func dialWaiting(ctx context.Context, cfg *transport.Config, network, address, desc string) (fd int, local string, err error) {
	wctx, release, err := waitContext(cfg, ctx, "dial", desc)
	if err != nil {
		return -1, "", err
	}
	defer release()
	dir := ""
	if !strings.HasPrefix(address, "@") {
		dir = filepath.Dir(address)
	}
	err = awaitCreate(wctx, desc, dir, func() (openState, error) {
		var err error
		fd, local, err = dialFD(ctx, network, address, desc)
		switch {
		case notExist(err):
			return notCreated, err
		case errors.Is(err, unix.ECONNREFUSED):
			return notReady, err
		}
		return opened, err
	})
	return fd, local, err
}

// dialFD dials address and returns the connected socket's descriptor,
// which the caller owns, and its local address; errors are dial's for
// desc.
func dialFD(ctx context.Context, network, address, desc string) (fd int, local string, err error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return -1, "", wrapErr("dial", desc, unwrapNetErr(err))
	}
	local = nc.LocalAddr().String()
	if fd, err = takeFD(nc); err != nil {
		return -1, "", opErr("dial", desc, err)
	}
	return fd, local, nil
}

// connOptions is the set of options a connection on network honours: a
// Unix stream socket's peer checks and files, and a seqpacket socket's
// message options, besides those of every byte stream.
func connOptions(network string) transport.OptionName {
	switch network {
	case "unix":
		return optUnixConn
	case "unixpacket":
		return optPacketConn
	}
	return optStream
}

func checkStreamNetwork(network string) error {
	switch network {
	case "unix", "unixpacket", "tcp", "tcp4", "tcp6":
		return nil
	}
	return fmt.Errorf("ipcchan: connection network %q: want unix, unixpacket, tcp, tcp4 or tcp6 (datagrams go through ListenPacket and DialPacket)", network)
}

// unwrapNetErr keeps the cause of a *net.OpError, which ipcchan's own
// OpError then names.
func unwrapNetErr(err error) error {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		if errors.Is(err, context.Canceled) {
			return context.Canceled
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return context.DeadlineExceeded
		}
		return ne.Err
	}
	return err
}

// takeFD duplicates the descriptor behind a net.Conn or net.Listener and
// closes it, leaving the caller the duplicate.
func takeFD(c interface{ Close() error }) (int, error) {
	defer c.Close()
	var rc syscall.RawConn
	var err error
	switch v := c.(type) {
	case *net.UnixConn:
		rc, err = v.SyscallConn()
	case *net.TCPConn:
		rc, err = v.SyscallConn()
	case *net.UnixListener:
		rc, err = v.SyscallConn()
	case *net.TCPListener:
		rc, err = v.SyscallConn()
	case *net.UDPConn:
		rc, err = v.SyscallConn()
	default:
		return -1, fmt.Errorf("unexpected %T", c)
	}
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return nfd, derr
}

// socketName names a socket the way /proc/self/fd shows it.
func socketName(fd int) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "socket"
	}
	return fmt.Sprintf("socket:[%d]", st.Ino)
}

func isAbstract(address string) bool { return strings.HasPrefix(address, "@") }

// checkUnixAddress refuses a Unix socket address that does not fit in a
// socket address (sun_path), with an error that says the limit, before the
// kernel's bare EINVAL would. Other networks pass.
func checkUnixAddress(network, address string) error {
	switch {
	case !strings.HasPrefix(network, "unix") || len(address) <= maxSunPath:
		return nil
	case isAbstract(address):
		return fmt.Errorf("abstract name %q is %d bytes, more than the %d a socket address holds; use a shorter name: %w", address, len(address), maxSunPath, unix.ENAMETOOLONG)
	}
	return fmt.Errorf("socket path %q is %d bytes, more than the %d a socket address holds (sun_path); use a shorter path, or an abstract name (@name): %w", address, len(address), maxSunPath, unix.ENAMETOOLONG)
}
