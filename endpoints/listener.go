package endpoints

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// Listener accepts stream socket connections, each a [Conn] carrying values
// of type S to the client and R from it. It is safe for concurrent use.
type Listener[S, R any] struct {
	fd      *poller.FD
	desc    string
	addr    string
	path    *unixPath // the socket file, for a Unix path
	tcp     bool
	cfg     *transport.Config
	check   func(ipcchan.PeerCred) error // vets Unix socket peers; nil: none
	mem     *connMemory                  // what the stream connections share, nil for none
	refused atomic.Uint64

	closeOnce sync.Once
	closeErr  error
}

// Listen listens for connections. network is "unix" (a stream; address a
// path, or "@name" for Linux's abstract namespace, which leaves nothing on
// disk), "unixpacket" (sequenced packets, addressed alike: one message per
// record, boundaries kept by the kernel), "tcp", "tcp4" or "tcp6" (address
// host:port; port 0 picks one, see Addr).
//
// A socket file is made with permission 0600 unless ipcchan.WithPerm says
// otherwise, whatever the umask. A socket file left behind by a listener
// that died is taken over only if nobody accepts on it; a file that is not
// a socket is refused with an error wrapping fs.ErrExist, and a path in use
// with one wrapping ErrAddrInUse. A lock file (path + ".lock") held while
// listening keeps two starters apart. Close removes both files.
//
// Options: those of [Dial] on the same network, which every accepted Conn
// gets; WithConnMemory on a stream network (see below); and WithPerm for a
// socket file. On an abstract name, which has no file permission, only
// processes running as this process's user are accepted unless [AnyUser],
// [AllowIDs] or ipcchan.WithPeerCheck says otherwise; on a path the file's
// permission decides, and a check is made only if one of them asks for it.
// A refused connection is closed before anything is read from it (see
// Accept and Refused).
//
// A socket path whose directory does not exist, or that this user may not
// create files in, is refused with an error that names the directory
// (wrapping fs.ErrNotExist or fs.ErrPermission); an address too long for
// a socket address with one that says the limit (wrapping
// unix.ENAMETOOLONG).
//
// A peer is held to what it sends, not what it announces: a connection's
// receive buffer grows only with the bytes that have arrived, a frame longer
// than a hello is refused before the hello (see transport.HandshakeTag), and
// what the stream connections' buffers grow beyond 128 KiB each comes from
// memory they share, ipcchan.WithConnMemory (32 MiB by default): a
// connection that needs more than is left waits for it (its Recv still ends
// with its context or Close), while messages that fit in the 128 KiB keep
// flowing on every connection. A frame that could never fit is refused
// with an error wrapping ErrFrameTooLarge. Descriptors sent over a Unix
// socket are closed by the kernel unless the receiver asks for them with
// ipcchan.WithRecvFiles.
func Listen[S, R any](ctx context.Context, network, address string, opts ...ipcchan.Option) (*Listener[S, R], error) {
	if ctx == nil {
		return nil, &ipcchan.OpError{Op: "listen", Endpoint: network + " " + address, Err: errNilContext}
	}
	if err := checkStreamNetwork(network); err != nil {
		return nil, err
	}
	desc := network + " listener " + address
	if err := checkUnixAddress(network, address); err != nil {
		return nil, opErr("listen", desc, err)
	}
	allowed := connOptions(network)
	if network != "unixpacket" {
		allowed |= transport.OptConnMemory
	}
	if strings.HasPrefix(network, "unix") && !isAbstract(address) {
		allowed |= optCreate
	}
	cfg, err := newConfig("listen", desc, allowed, opts)
	if err != nil {
		return nil, err
	}
	if _, _, err := connSides[S, R](cfg); err != nil { // now, not at every Accept
		return nil, opErr("listen", desc, err)
	}
	l := &Listener[S, R]{desc: desc, addr: address, cfg: cfg, check: peerCheckFor(cfg, network, address)}
	if network != "unixpacket" {
		l.mem = newConnMemory(cfg.ConnMemory())
	}
	var fd int
	if network == "unix" || network == "unixpacket" {
		typ := unix.SOCK_STREAM
		if network == "unixpacket" {
			typ = unix.SOCK_SEQPACKET
		}
		fd, err = l.listenUnix(address, typ)
	} else {
		l.tcp = true
		fd, err = l.listenTCP(ctx, network, address)
	}
	if err != nil {
		return nil, wrapErr("listen", desc, err)
	}
	if l.fd, err = poller.Open(fd, desc); err != nil {
		if l.path != nil {
			l.path.Close()
		}
		return nil, opErr("listen", desc, err)
	}
	return l, nil
}

func (l *Listener[S, R]) listenUnix(address string, typ int) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if isAbstract(address) {
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: address})
	} else {
		l.path, err = bindUnixPath(fd, address, typ, l.cfg.Perm())
	}
	if err == nil {
		err = unix.Listen(fd, unix.SOMAXCONN)
	}
	if err != nil {
		unix.Close(fd)
		if l.path != nil {
			l.path.Close()
			l.path = nil
		}
		return -1, err
	}
	return fd, nil
}

func (l *Listener[S, R]) listenTCP(ctx context.Context, network, address string) (int, error) {
	var lc net.ListenConfig
	nl, err := lc.Listen(ctx, network, address)
	if err != nil {
		return -1, unwrapNetErr(err)
	}
	l.addr = nl.Addr().String()
	return takeFD(nl)
}

// Addr returns the address the Listener listens on, with the port filled in
// for TCP.
func (l *Listener[S, R]) Addr() string {
	if l == nil {
		return ""
	}
	return l.addr
}

// made reports whether Listen made l.
func (l *Listener[S, R]) made() bool { return l != nil && l.fd != nil }

func (l *Listener[S, R]) notMade(op string) error { return errNotMade(op, "Listener", "Listen") }

// Accept waits for the next connection and returns it. A Unix socket peer
// that the peer check refuses is closed and not returned: Accept goes on
// waiting (see Refused). It returns ctx.Err() if ctx ends first and an
// error wrapping os.ErrClosed after Close.
func (l *Listener[S, R]) Accept(ctx context.Context) (*Conn[S, R], error) {
	switch {
	case !l.made():
		return nil, l.notMade("accept")
	case ctx == nil:
		return nil, &ipcchan.OpError{Op: "accept", Endpoint: l.desc, Err: errNilContext}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for {
		var nfd int
		var sa unix.Sockaddr
		err := l.fd.Read(ctx, func(fd int) error {
			var err error
			nfd, sa, err = unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if errors.Is(err, unix.ECONNABORTED) {
				return unix.EAGAIN // the client gave up before we took it
			}
			return err
		})
		if err != nil {
			return nil, wrapErr("accept", l.desc, err)
		}
		if l.tcp {
			unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		}
		c, err := newConn[S, R](nfd, l.desc+" conn from "+peerName(sa, nfd), l.cfg, l.check, l.mem)
		if errors.Is(err, ErrPeerRefused) {
			l.refused.Add(1)
			continue
		}
		return c, err
	}
}

// Refused returns how many connections the peer check has refused.
func (l *Listener[S, R]) Refused() uint64 {
	if l == nil {
		return 0
	}
	return l.refused.Load()
}

// Close stops listening and removes the socket file and its lock file.
// Connections already accepted are not affected. Close is idempotent.
func (l *Listener[S, R]) Close() error {
	if !l.made() {
		return l.notMade("close")
	}
	l.closeOnce.Do(func() {
		err := l.fd.Close()
		if l.path != nil {
			err = errors.Join(err, l.path.Close())
		}
		l.closeErr = transport.WrapError("close", l.desc, err)
	})
	return l.closeErr
}

// peerName describes an accepted peer: its address, or for Unix sockets
// its pid.
func peerName(sa unix.Sockaddr, fd int) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	case *unix.SockaddrInet6:
		return net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
	}
	if uc, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
		return "pid " + strconv.Itoa(int(uc.Pid))
	}
	return "unknown peer"
}
