package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

// The option sets the constructors are documented to honour (their doc
// comments, and the README's Options table), written out here on their
// own rather than taken from the package, so that the matrix below checks
// the code against the documentation.
const (
	oRecv       = transport.OptCodec | transport.OptMaxMessageSize | transport.OptHandshake | transport.OptForeignPeer
	oSend       = oRecv | transport.OptTag
	oStreamRecv = oRecv | transport.OptFraming
	oStreamSend = oSend | transport.OptFraming | transport.OptSendBuffer | transport.OptLinger | transport.OptAtomicWrites
	oStream     = oStreamRecv | oStreamSend
	oUnixConn   = oStream | transport.OptPeerCheck | transport.OptRecvFiles // Unix stream sockets
	oPacketConn = oSend | transport.OptPeerCheck                            // unixpacket: the kernel ends the stream
	oMsgRecv    = oRecv | transport.OptSenders                              // datagrams, queues, the ring
	oMsgSend    = oSend | transport.OptLinger
	oPerm       = transport.OptPerm
	oWait       = transport.OptWaitForCreate
	oBcastFmt   = transport.OptMaxMessageSize | transport.OptSubscribers | transport.OptLossy // what formats a broadcast
)

// waitCtx bounds the matrix's WithWaitForCreate: a context that can end,
// as the option asks of constructors without a context of their own. The
// objects exist already, so nothing waits for it.
var waitCtx, _ = context.WithCancel(context.Background())

// oneOfEach returns every option, each with one valid value.
func oneOfEach() []ipcchan.Option {
	return []ipcchan.Option{
		ipcchan.WithCodec(codec.JSON[string]()),
		ipcchan.WithTag(1),
		ipcchan.WithMaxMessageSize(1024),
		ipcchan.WithSendBuffer(1024),
		ipcchan.WithLinger(time.Millisecond),
		ipcchan.WithAtomicWrites(true),
		ipcchan.WithPerm(0o640),
		ipcchan.WithSenders(2),
		ipcchan.WithHandshake(false),
		ipcchan.WithFraming(codec.DelimitedRecords('\n')),
		ipcchan.WithForeignPeer(),
		ipcchan.WithPeerCheck(func(ipcchan.PeerCred) error { return nil }),
		ipcchan.WithConnMemory(1 << 20),
		ipcchan.WithRecvFiles(4),
		ipcchan.WithTrustedOwners(0),
		ipcchan.WithWaitForCreate(waitCtx),
		ipcchan.WithSubscribers(4),
		ipcchan.WithLossy(),
		ipcchan.WithReplay(),
	}
}

// allOptionNames is every option there is: the bits that name one.
func allOptionNames() transport.OptionName {
	var all transport.OptionName
	for i := range 32 {
		if n := transport.OptionName(1) << i; n.String() != "no option" {
			all |= n
		}
	}
	return all
}

// optCase is one constructor (on one kind of endpoint) and the options it
// is documented to honour.
type optCase struct {
	name    string
	honours transport.OptionName
	// make calls the constructor with opts, after whatever it needs (a
	// FIFO to open, a listener to dial, cleaned up by t), and returns what
	// closes and removes what it made.
	make func(t *testing.T, opts []ipcchan.Option) (undo func() error, err error)
}

// closing returns an undo that closes cs, in order.
func closing(cs ...interface{ Close() error }) func() error {
	return func() error {
		var errs []error
		for _, c := range cs {
			errs = append(errs, c.Close())
		}
		return errors.Join(errs...)
	}
}

// shortDir returns a new directory short enough for socket paths (a test
// name in t.TempDir's path can make one longer than sun_path).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipcchan-opt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func optCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// must returns v, or fails the test given to what it returns with err:
// must(f())(t).
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// mqFor makes a POSIX queue for a test, removed when it ends.
func mqFor(t *testing.T) string {
	t.Helper()
	name := endpoints.ObjectName("opt")
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { endpoints.RemoveMQ(name) })
	return name
}

// sysvQueueFor makes a SysV queue for a test, removed when it ends.
func sysvQueueFor(t *testing.T) *endpoints.SysVQueue {
	t.Helper()
	q, _, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SysVQueue, error) { return endpoints.CreateSysVQueue(k) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Remove() })
	return q
}

// ringFor makes a formatted ring in a memfd for a test.
func ringFor(t *testing.T) *endpoints.Mapping {
	t.Helper()
	m := must(endpoints.NewMemfd("opt", 256+64<<10))(t)
	t.Cleanup(func() { m.Close() })
	if err := endpoints.FormatRing(m); err != nil {
		t.Fatal(err)
	}
	return m
}

// broadcastFor makes a formatted broadcast in a memfd for a test.
func broadcastFor(t *testing.T) *endpoints.Mapping {
	t.Helper()
	m := must(endpoints.NewMemfd("opt", 1<<16))(t)
	t.Cleanup(func() { m.Close() })
	if err := endpoints.FormatBroadcast(m); err != nil {
		t.Fatal(err)
	}
	return m
}

// listenerFor listens on network and address with no options for a test
// and returns the address to dial.
func listenerFor(t *testing.T, network, address string) string {
	t.Helper()
	l := must(endpoints.Listen[string, string](optCtx(t), network, address))(t)
	t.Cleanup(func() { l.Close() })
	return l.Addr()
}

// packetReceiverFor binds a datagram receiver with no options for a test
// and returns the address to send to.
func packetReceiverFor(t *testing.T, network, address string) string {
	t.Helper()
	rx, addr, err := endpoints.ListenPacket[string](optCtx(t), network, address)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	return addr
}

// fileOf returns a socket's descriptor as an os.File, closed when the test
// ends (FileSender and FileReceiver work on duplicates).
func fileOf(t *testing.T, c interface{ File() (*os.File, error) }) *os.File {
	t.Helper()
	f := must(c.File())(t)
	t.Cleanup(func() { f.Close() })
	return f
}

// socketpairFiles returns the two ends of a Unix socket pair of type typ.
func socketpairFiles(t *testing.T, typ int) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// tcpFiles returns the two ends of a TCP connection on the loopback.
func tcpFiles(t *testing.T) (*os.File, *os.File) {
	t.Helper()
	l := must(net.Listen("tcp", "127.0.0.1:0"))(t)
	defer l.Close()
	c := must(net.Dial("tcp", l.Addr().String()))(t)
	defer c.Close()
	s := must(l.Accept())(t)
	defer s.Close()
	return fileOf(t, c.(*net.TCPConn)), fileOf(t, s.(*net.TCPConn))
}

// udpFiles returns a bound UDP socket and one connected to it.
func udpFiles(t *testing.T) (send, recv *os.File) {
	t.Helper()
	pc := must(net.ListenPacket("udp", "127.0.0.1:0"))(t)
	defer pc.Close()
	c := must(net.Dial("udp", pc.LocalAddr().String()))(t)
	defer c.Close()
	return fileOf(t, c.(*net.UDPConn)), fileOf(t, pc.(*net.UDPConn))
}

var inheritSeq atomic.Int64

// inherit hands f to this process under a fresh name, as a parent's Start
// would, and returns the name. The descriptor handed is a duplicate that
// the Inherit function takes over.
func inherit(t *testing.T, f *os.File) string {
	t.Helper()
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	name := "opt" + strconv.FormatInt(inheritSeq.Add(1), 10)
	t.Setenv(endpoints.EnvFiles, name+"="+strconv.Itoa(fd))
	return name
}

// inheritedConn makes an inherited Conn on f, closing the descriptor
// InheritConn did not take over.
func inheritedConn(t *testing.T, f *os.File, opts []ipcchan.Option) (func() error, error) {
	c, err := endpoints.InheritConn[string, string](inherit(t, f), opts...)
	if err != nil {
		return nil, err
	}
	return c.Close, nil
}

func sender(tx *ipcchan.Sender[string], err error) (func() error, error) {
	if err != nil {
		return nil, err
	}
	return tx.Close, nil
}

func receiver(rx *ipcchan.Receiver[string], err error) (func() error, error) {
	if err != nil {
		return nil, err
	}
	return rx.Close, nil
}

func pair(tx *ipcchan.Sender[string], rx *ipcchan.Receiver[string], err error) (func() error, error) {
	if err != nil {
		return nil, err
	}
	return closing(rx, tx), nil
}

func conn(c *endpoints.Conn[string, string], err error) (func() error, error) {
	if err != nil {
		return nil, err
	}
	return c.Close, nil
}

func mapping(m *endpoints.Mapping, err error) (func() error, error) {
	if err != nil {
		return nil, err
	}
	return func() error { return errors.Join(m.Remove(), m.Close()) }, nil
}

// optCases is every exported constructor that takes options, on every kind
// of endpoint it makes, with the options it is documented to honour.
func optCases() []optCase {
	ctxOf := optCtx
	return []optCase{
		{"PipePair", oStream, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return pair(endpoints.PipePair[string](opts...))
		}},
		{"CreateFIFO", oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			path := shortDir(t) + "/f"
			if err := endpoints.CreateFIFO(path, opts...); err != nil {
				return nil, err
			}
			return func() error { return endpoints.RemoveFIFO(path) }, nil
		}},
		{"OpenFIFOReceiver", oStreamRecv | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			path := shortDir(t) + "/f"
			if err := endpoints.CreateFIFO(path); err != nil {
				t.Fatal(err)
			}
			return receiver(endpoints.OpenFIFOReceiver[string](ctxOf(t), path, opts...))
		}},
		{"OpenFIFOSender", oStreamSend | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			path := shortDir(t) + "/f"
			if err := endpoints.CreateFIFO(path); err != nil {
				t.Fatal(err)
			}
			rx := must(endpoints.OpenFIFOReceiver[string](ctxOf(t), path))(t)
			t.Cleanup(func() { rx.Close() })
			return sender(endpoints.OpenFIFOSender[string](ctxOf(t), path, opts...))
		}},

		{"Listen/unix-path", oUnixConn | transport.OptConnMemory | oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			l, err := endpoints.Listen[string, string](ctxOf(t), "unix", shortDir(t)+"/s", opts...)
			if err != nil {
				return nil, err
			}
			return l.Close, nil
		}},
		{"Listen/unix-abstract", oUnixConn | transport.OptConnMemory, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			l, err := endpoints.Listen[string, string](ctxOf(t), "unix", abstractName("opt"), opts...)
			if err != nil {
				return nil, err
			}
			return l.Close, nil
		}},
		{"Listen/unixpacket-path", oPacketConn | oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			l, err := endpoints.Listen[string, string](ctxOf(t), "unixpacket", shortDir(t)+"/s", opts...)
			if err != nil {
				return nil, err
			}
			return l.Close, nil
		}},
		{"Listen/unixpacket-abstract", oPacketConn, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			l, err := endpoints.Listen[string, string](ctxOf(t), "unixpacket", abstractName("opt"), opts...)
			if err != nil {
				return nil, err
			}
			return l.Close, nil
		}},
		{"Listen/tcp", oStream | transport.OptConnMemory, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			l, err := endpoints.Listen[string, string](ctxOf(t), "tcp", "127.0.0.1:0", opts...)
			if err != nil {
				return nil, err
			}
			return l.Close, nil
		}},
		{"Dial/unix-path", oUnixConn | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			addr := listenerFor(t, "unix", shortDir(t)+"/s")
			return conn(endpoints.Dial[string, string](ctxOf(t), "unix", addr, opts...))
		}},
		{"Dial/unix-abstract", oUnixConn | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			addr := listenerFor(t, "unix", abstractName("opt"))
			return conn(endpoints.Dial[string, string](ctxOf(t), "unix", addr, opts...))
		}},
		{"Dial/unixpacket", oPacketConn | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			addr := listenerFor(t, "unixpacket", shortDir(t)+"/s")
			return conn(endpoints.Dial[string, string](ctxOf(t), "unixpacket", addr, opts...))
		}},
		{"Dial/tcp", oStream, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			addr := listenerFor(t, "tcp", "127.0.0.1:0")
			return conn(endpoints.Dial[string, string](ctxOf(t), "tcp", addr, opts...))
		}},
		{"SocketPair", oUnixConn, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, b, err := endpoints.SocketPair[string, string](opts...)
			if err != nil {
				return nil, err
			}
			return closing(a, b), nil
		}},

		{"ListenPacket/unixgram-path", oMsgRecv | transport.OptPeerCheck | oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			rx, _, err := endpoints.ListenPacket[string](ctxOf(t), "unixgram", shortDir(t)+"/s", opts...)
			return receiver(rx, err)
		}},
		{"ListenPacket/unixgram-abstract", oMsgRecv | transport.OptPeerCheck, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			rx, _, err := endpoints.ListenPacket[string](ctxOf(t), "unixgram", abstractName("opt"), opts...)
			return receiver(rx, err)
		}},
		{"ListenPacket/udp", oMsgRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			rx, _, err := endpoints.ListenPacket[string](ctxOf(t), "udp", "127.0.0.1:0", opts...)
			return receiver(rx, err)
		}},
		{"DialPacket/unixgram-path", oMsgSend | transport.OptPeerCheck | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			addr := packetReceiverFor(t, "unixgram", shortDir(t)+"/s")
			return sender(endpoints.DialPacket[string](ctxOf(t), "unixgram", addr, opts...))
		}},
		{"DialPacket/unixgram-abstract", oMsgSend | transport.OptPeerCheck | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			addr := packetReceiverFor(t, "unixgram", abstractName("opt"))
			return sender(endpoints.DialPacket[string](ctxOf(t), "unixgram", addr, opts...))
		}},
		{"DialPacket/udp", oMsgSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			addr := packetReceiverFor(t, "udp", "127.0.0.1:0")
			return sender(endpoints.DialPacket[string](ctxOf(t), "udp", addr, opts...))
		}},

		{"CreateMQ", oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			name := endpoints.ObjectName("opt")
			if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, opts...); err != nil {
				return nil, err
			}
			return func() error { return endpoints.RemoveMQ(name) }, nil
		}},
		{"OpenMQSender", oMsgSend | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.OpenMQSender[string](mqFor(t), opts...))
		}},
		{"OpenMQReceiver", oMsgRecv | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return receiver(endpoints.OpenMQReceiver[string](mqFor(t), opts...))
		}},
		{"MQPair", oMsgSend | oMsgRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return pair(endpoints.MQPair[string](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, opts...))
		}},
		{"OpenMQBands", oMsgRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			rxs, err := endpoints.OpenMQBands[string](mqFor(t), []uint32{1}, opts...)
			if err != nil {
				return nil, err
			}
			return closing(rxs[0], rxs[1]), nil
		}},

		{"CreateSysVQueue", oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			q, _, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SysVQueue, error) {
				return endpoints.CreateSysVQueue(k, opts...)
			})
			if err != nil {
				return nil, err
			}
			return q.Remove, nil
		}},
		{"SysVSender", oMsgSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.SysVSender[string](sysvQueueFor(t), opts...))
		}},
		{"SysVReceiver", oMsgRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return receiver(endpoints.SysVReceiver[string](sysvQueueFor(t), endpoints.MsgSelect{}, opts...))
		}},

		{"FormatRing", transport.OptMaxMessageSize, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			m := must(endpoints.NewMemfd("opt", 256+64<<10))(t)
			if err := endpoints.FormatRing(m, opts...); err != nil {
				m.Close()
				return nil, err
			}
			return m.Close, nil
		}},
		{"FormatBroadcast", oBcastFmt, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			m := must(endpoints.NewMemfd("opt", 1<<16))(t)
			if err := endpoints.FormatBroadcast(m, opts...); err != nil {
				m.Close()
				return nil, err
			}
			return m.Close, nil
		}},
		{"Broadcast", oBcastFmt | oMsgSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			m := must(endpoints.NewMemfd("opt", 1<<16))(t)
			t.Cleanup(func() { m.Close() })
			return sender(endpoints.Broadcast[string](m, opts...))
		}},
		{"BroadcastSender", oMsgSend | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.BroadcastSender[string](broadcastFor(t), opts...))
		}},
		{"Subscribe", oMsgRecv | oWait | transport.OptReplay, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return receiver(endpoints.Subscribe[string](broadcastFor(t), opts...))
		}},
		{"RingPair", oMsgSend | oMsgRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return pair(endpoints.RingPair[string](64<<10, opts...))
		}},
		{"RingSender", oMsgSend | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.RingSender[string](ringFor(t), opts...))
		}},
		{"RingReceiver", oMsgRecv | oWait, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return receiver(endpoints.RingReceiver[string](ringFor(t), opts...))
		}},

		{"CreateShm", oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return mapping(endpoints.CreateShm(endpoints.ObjectName("opt"), 4096, opts...))
		}},
		{"CreateSysVShm", oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			m, _, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.Mapping, error) {
				return endpoints.CreateSysVShm(k, 4096, opts...)
			})
			return mapping(m, err)
		}},
		{"CreateFileMapping", oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return mapping(endpoints.CreateFileMapping(shortDir(t)+"/m", 4096, opts...))
		}},
		{"CreateSemaphore", oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			s, err := endpoints.CreateSemaphore(endpoints.ObjectName("opt"), 0, opts...)
			if err != nil {
				return nil, err
			}
			return func() error { return errors.Join(s.Remove(), s.Close()) }, nil
		}},
		{"CreateSemSet", oPerm, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			s, _, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SemSet, error) {
				return endpoints.CreateSemSet(k, 1, opts...)
			})
			if err != nil {
				return nil, err
			}
			return func() error { return errors.Join(s.Remove(), s.Close()) }, nil
		}},
		{"OpenLock", oPerm | transport.OptTrustedOwners, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			l, err := endpoints.OpenLock(shortDir(t)+"/l", endpoints.OFDLocks, opts...)
			if err != nil {
				return nil, err
			}
			return l.Close, nil
		}},

		// Descriptors the caller has, or inherited: what the descriptor
		// is decides, as for the endpoint's own constructor.
		{"FileSender/pipe", oStreamSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			_, w := must2(t, os.Pipe)
			return sender(endpoints.FileSender[string](w, opts...))
		}},
		{"FileReceiver/pipe", oStreamRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			r, _ := must2(t, os.Pipe)
			return receiver(endpoints.FileReceiver[string](r, opts...))
		}},
		{"FileSender/unix", oStreamSend | transport.OptPeerCheck, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_STREAM)
			return sender(endpoints.FileSender[string](a, opts...))
		}},
		{"FileReceiver/unix", oStreamRecv | transport.OptPeerCheck | transport.OptRecvFiles, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_STREAM)
			return receiver(endpoints.FileReceiver[string](a, opts...))
		}},
		{"FileSender/tcp", oStreamSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := tcpFiles(t)
			return sender(endpoints.FileSender[string](a, opts...))
		}},
		{"FileReceiver/tcp", oStreamRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := tcpFiles(t)
			return receiver(endpoints.FileReceiver[string](a, opts...))
		}},
		{"FileSender/unixgram", oMsgSend | transport.OptPeerCheck, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_DGRAM)
			return sender(endpoints.FileSender[string](a, opts...))
		}},
		{"FileReceiver/unixgram", oMsgRecv | transport.OptPeerCheck, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_DGRAM)
			return receiver(endpoints.FileReceiver[string](a, opts...))
		}},
		{"FileSender/unixpacket", oPacketConn, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_SEQPACKET)
			return sender(endpoints.FileSender[string](a, opts...))
		}},
		{"FileReceiver/unixpacket", oRecv | transport.OptPeerCheck, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_SEQPACKET)
			return receiver(endpoints.FileReceiver[string](a, opts...))
		}},
		{"FileSender/udp", oMsgSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			send, _ := udpFiles(t)
			return sender(endpoints.FileSender[string](send, opts...))
		}},
		{"FileReceiver/udp", oMsgRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			_, recv := udpFiles(t)
			return receiver(endpoints.FileReceiver[string](recv, opts...))
		}},
		{"FileSender/mq", oMsgSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			tx := must(endpoints.OpenMQSender[string](mqFor(t)))(t)
			t.Cleanup(func() { tx.Close() })
			return sender(endpoints.FileSender[string](fileOf(t, tx), opts...))
		}},
		{"FileReceiver/mq", oMsgRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			rx := must(endpoints.OpenMQReceiver[string](mqFor(t)))(t)
			t.Cleanup(func() { rx.Close() })
			return receiver(endpoints.FileReceiver[string](fileOf(t, rx), opts...))
		}},
		{"FileSender/ring", oMsgSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.FileSender[string](fileOf(t, ringFor(t)), opts...))
		}},
		{"FileReceiver/ring", oMsgRecv, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return receiver(endpoints.FileReceiver[string](fileOf(t, ringFor(t)), opts...))
		}},
		{"InheritSender/pipe", oStreamSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			_, w := must2(t, os.Pipe)
			return sender(endpoints.InheritSender[string](inherit(t, w), opts...))
		}},
		{"InheritReceiver/unixgram", oMsgRecv | transport.OptPeerCheck, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_DGRAM)
			return receiver(endpoints.InheritReceiver[string](inherit(t, a), opts...))
		}},
		{"InheritReceiver/broadcast", oMsgRecv | transport.OptReplay, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			f := must(broadcastFor(t).File())(t)
			defer f.Close()
			return receiver(endpoints.InheritReceiver[string](inherit(t, f), opts...))
		}},
		{"InheritSender/sysv", oMsgSend, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			name := "opt" + strconv.FormatInt(inheritSeq.Add(1), 10)
			t.Setenv(endpoints.EnvFiles, fmt.Sprintf("%s=sysvmq:%d:1:", name, sysvQueueFor(t).ID()))
			return sender(endpoints.InheritSender[string](name, opts...))
		}},
		{"InheritConn/unix", oUnixConn, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_STREAM)
			return inheritedConn(t, a, opts)
		}},
		{"InheritConn/unixpacket", oPacketConn, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_SEQPACKET)
			return inheritedConn(t, a, opts)
		}},
		{"InheritConn/tcp", oStream, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := tcpFiles(t)
			return inheritedConn(t, a, opts)
		}},
	}
}

func must2(t *testing.T, f func() (*os.File, *os.File, error)) (*os.File, *os.File) {
	t.Helper()
	a, b, err := f()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// wantOptionErr checks that err refuses the option named name: an
// *ipcchan.OpError wrapping ipcchan.ErrOption that names it.
func wantOptionErr(t *testing.T, err error, name transport.OptionName) {
	t.Helper()
	var oe *ipcchan.OpError
	switch {
	case err == nil:
		t.Errorf("%s accepted, want it refused", name)
	case !errors.Is(err, ipcchan.ErrOption):
		t.Errorf("%s: error %q does not wrap ipcchan.ErrOption", name, err)
	case !strings.Contains(err.Error(), name.String()):
		t.Errorf("%s: error %q does not name the option", name, err)
	case !errors.As(err, &oe):
		t.Errorf("%s: error %q is not an *ipcchan.OpError", name, err)
	}
}

// Every constructor that takes options accepts exactly those it is
// documented to honour, each alone, and refuses every other by name with
// ipcchan.ErrOption, never ignoring one.
func TestOptionMatrix(t *testing.T) {
	all := oneOfEach()
	var names transport.OptionName
	for _, o := range all {
		names |= o.Name()
	}
	if want := allOptionNames(); names != want {
		t.Fatalf("the matrix tries %v; the options are %v", names, want)
	}
	for _, c := range optCases() {
		t.Run(c.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			for _, o := range all {
				t.Run(strings.TrimPrefix(o.Name().String(), "ipcchan."), func(t *testing.T) {
					undo, err := c.make(t, []ipcchan.Option{o})
					if c.honours&o.Name() == 0 {
						if err == nil {
							undo()
						}
						wantOptionErr(t, err, o.Name())
						return
					}
					if err != nil {
						t.Fatalf("%s, which it honours, refused: %v", o.Name(), err)
					}
					if err := undo(); err != nil {
						t.Errorf("close: %v", err)
					}
				})
			}
			// The zero Option is no option: every constructor takes it.
			t.Run("zero", func(t *testing.T) {
				undo, err := c.make(t, []ipcchan.Option{{}})
				if err != nil {
					t.Fatalf("the zero Option refused: %v", err)
				}
				if err := undo(); err != nil {
					t.Errorf("close: %v", err)
				}
			})
		})
	}
}

// outOfRange returns option values out of their range, as careless or
// hostile code could pass them.
func outOfRange() []ipcchan.Option {
	return []ipcchan.Option{
		ipcchan.WithCodec[string](nil),
		ipcchan.WithMaxMessageSize(0),
		ipcchan.WithMaxMessageSize(math.MinInt),
		ipcchan.WithSendBuffer(-1),
		ipcchan.WithLinger(-time.Nanosecond),
		ipcchan.WithLinger(math.MinInt64),
		ipcchan.WithPerm(0o4777),                // setuid, as an octal literal
		ipcchan.WithPerm(os.ModeSetuid | 0o600), // and as os.FileMode says it
		ipcchan.WithPerm(os.ModeSticky | 0o600), // sticky
		ipcchan.WithPerm(os.ModeDir | 0o700),    // a type bit
		ipcchan.WithPerm(0o400),                 // the owner cannot write
		ipcchan.WithPerm(0),                     // nor read
		ipcchan.WithSenders(0),
		ipcchan.WithSenders(-1),
		ipcchan.WithFraming(nil),
		ipcchan.WithPeerCheck(nil),
		ipcchan.WithConnMemory(-1),
		ipcchan.WithRecvFiles(0),
		ipcchan.WithRecvFiles(-1),
		ipcchan.WithTrustedOwners(),
		ipcchan.WithTrustedOwners(0, -1),
	}
}

// An option value out of its range is refused by name at construction, by
// every constructor, whether or not it honours the option.
func TestOptionOutOfRange(t *testing.T) {
	for _, c := range optCases() {
		t.Run(c.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			for i, o := range outOfRange() {
				t.Run(strconv.Itoa(i), func(t *testing.T) {
					undo, err := c.make(t, []ipcchan.Option{o})
					if err == nil {
						undo()
					}
					wantOptionErr(t, err, o.Name())
				})
			}
		})
	}
}

// nullTransport is a transport of another package: it carries nothing.
type nullTransport struct{}

func (nullTransport) SendMsg(context.Context, uint32, []byte) error { return nil }
func (nullTransport) TrySendMsg(uint32, []byte) error               { return nil }
func (nullTransport) MaxMsgSize() int                               { return 1 << 10 }
func (nullTransport) Close() error                                  { return nil }
func (nullTransport) String() string                                { return "null transport" }
func (nullTransport) RecvMsg(context.Context, func(uint32, []byte) error) error {
	return ipcchan.ErrWouldBlock
}
func (nullTransport) TryRecvMsg(func(uint32, []byte) error) error { return ipcchan.ErrWouldBlock }

// ipcchan.NewSender and NewReceiver on a transport of their own honour the
// options of a Sender and of a Receiver, and refuse the rest (which only an
// endpoint can honour) by name.
func TestNewSenderReceiverOptions(t *testing.T) {
	for _, o := range oneOfEach() {
		t.Run(strings.TrimPrefix(o.Name().String(), "ipcchan."), func(t *testing.T) {
			tx, err := ipcchan.NewSender[string](nullTransport{}, o)
			if o.Name()&transport.SenderOptions != 0 {
				if err != nil {
					t.Errorf("NewSender refused %s: %v", o.Name(), err)
				} else {
					tx.Close()
				}
			} else {
				wantOptionErr(t, err, o.Name())
			}
			rx, err := ipcchan.NewReceiver[string](nullTransport{}, o)
			if o.Name()&transport.ReceiverOptions != 0 {
				if err != nil {
					t.Errorf("NewReceiver refused %s: %v", o.Name(), err)
				} else {
					rx.Close()
				}
			} else {
				wantOptionErr(t, err, o.Name())
			}
		})
	}
	if transport.SenderOptions != oSend || transport.ReceiverOptions != oRecv {
		t.Errorf("a Sender honours %v and a Receiver %v; documented: %v and %v", transport.SenderOptions, transport.ReceiverOptions, oSend, oRecv)
	}
	for _, o := range outOfRange() {
		_, err := ipcchan.NewSender[string](nullTransport{}, o)
		wantOptionErr(t, err, o.Name())
		_, err = ipcchan.NewReceiver[string](nullTransport{}, o)
		wantOptionErr(t, err, o.Name())
	}
}

// A peer check given for a Unix socket handed to this process (by
// FileSender, FileReceiver or Inherit*) is applied as Dial's and
// DialPacket's are: to the process at the other end of a connection, and
// to the owner of the socket a unixgram sender sends to. On message
// sockets it used to be accepted and never called (and stream sockets
// refused it).
func TestHandedSocketPeerCheck(t *testing.T) {
	ipcchantest.CheckFDs(t)
	refuse := ipcchan.WithPeerCheck(func(ipcchan.PeerCred) error { return errors.New("nobody") })
	for _, tc := range []struct {
		name string
		typ  int
		send bool
	}{
		{"unixpacket-sender", unix.SOCK_SEQPACKET, true},
		{"unixpacket-receiver", unix.SOCK_SEQPACKET, false},
		{"unixgram-sender", unix.SOCK_DGRAM, true},
		{"unix-sender", unix.SOCK_STREAM, true},
		{"unix-receiver", unix.SOCK_STREAM, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := socketpairFiles(t, tc.typ)
			var undo func() error
			var err error
			if tc.send {
				undo, err = sender(endpoints.FileSender[string](a, refuse))
			} else {
				undo, err = receiver(endpoints.FileReceiver[string](a, refuse))
			}
			if err == nil {
				undo()
				t.Fatal("a peer check that refuses everyone let the peer through")
			}
			if !errors.Is(err, endpoints.ErrPeerRefused) {
				t.Fatalf("err = %v, want ErrPeerRefused", err)
			}
		})
	}
	// The check sees the peer's credentials.
	a, _ := socketpairFiles(t, unix.SOCK_SEQPACKET)
	var seen ipcchan.PeerCred
	rx, err := endpoints.FileReceiver[string](a, ipcchan.WithPeerCheck(func(c ipcchan.PeerCred) error { seen = c; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	rx.Close()
	if seen.PID != os.Getpid() || seen.UID != os.Getuid() {
		t.Fatalf("the check saw %+v, want this process (pid %d, uid %d)", seen, os.Getpid(), os.Getuid())
	}
}

// wantRefused checks that make refused opts with an error wrapping
// ipcchan.ErrOption that names name (and wraps also, if not nil), and
// closes what it made if it did not.
func wantRefused(t *testing.T, what string, undo func() error, err error, name transport.OptionName, also error) {
	t.Helper()
	if err == nil {
		if undo != nil {
			undo()
		}
		t.Errorf("%s: accepted, want %s refused", what, name)
		return
	}
	if !errors.Is(err, ipcchan.ErrOption) || !strings.Contains(err.Error(), name.String()) || (also != nil && !errors.Is(err, also)) {
		t.Errorf("%s: %v, want an ErrOption naming %s (and wrapping %v)", what, err, name, also)
	}
}

func wantAccepted(t *testing.T, what string, undo func() error, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if err := undo(); err != nil {
		t.Errorf("%s: close: %v", what, err)
	}
}

// WithForeignPeer says the peer sends no hello: WithHandshake(true) beside
// it, which it silently overrode, is refused, in either order, by an
// endpoint and by NewSender/NewReceiver alike.
func TestForeignPeerRefusesHandshake(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, opts := range [][]ipcchan.Option{
		{ipcchan.WithForeignPeer(), ipcchan.WithHandshake(true)},
		{ipcchan.WithHandshake(true), ipcchan.WithForeignPeer()},
	} {
		undo, err := pair(endpoints.PipePair[string](opts...))
		wantRefused(t, "PipePair", undo, err, transport.OptHandshake, nil)
		undo, err = pair(endpoints.RingPair[string](4096, opts...))
		wantRefused(t, "RingPair", undo, err, transport.OptHandshake, nil)
		_, err = ipcchan.NewSender[string](nullTransport{}, opts...)
		wantRefused(t, "NewSender", nil, err, transport.OptHandshake, nil)
		_, err = ipcchan.NewReceiver[string](nullTransport{}, opts...)
		wantRefused(t, "NewReceiver", nil, err, transport.OptHandshake, nil)
	}
	undo, err := pair(endpoints.PipePair[string](ipcchan.WithForeignPeer(), ipcchan.WithHandshake(false)))
	wantAccepted(t, "PipePair with WithHandshake(false)", undo, err)
}

// A POSIX queue cannot carry the hello, whose tag is no priority: with
// WithHandshake(true) the hello's send failed, and a receiver waited for
// one for ever. Refused now, on every POSIX queue end.
func TestPosixMQRefusesHandshake(t *testing.T) {
	ipcchantest.CheckFDs(t)
	on := ipcchan.WithHandshake(true)
	undo, err := sender(endpoints.OpenMQSender[string](mqFor(t), on))
	wantRefused(t, "OpenMQSender", undo, err, transport.OptHandshake, ipcchan.ErrReservedTag)
	undo, err = receiver(endpoints.OpenMQReceiver[string](mqFor(t), on))
	wantRefused(t, "OpenMQReceiver", undo, err, transport.OptHandshake, ipcchan.ErrReservedTag)
	undo, err = pair(endpoints.MQPair[string](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, on))
	wantRefused(t, "MQPair", undo, err, transport.OptHandshake, ipcchan.ErrReservedTag)
	rxs, err := endpoints.OpenMQBands[string](mqFor(t), []uint32{1}, on)
	if err == nil {
		rxs[0].Close()
		rxs[1].Close()
	}
	wantRefused(t, "OpenMQBands", nil, err, transport.OptHandshake, ipcchan.ErrReservedTag)
	undo, err = pair(endpoints.MQPair[string](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, ipcchan.WithHandshake(false)))
	wantAccepted(t, "MQPair with WithHandshake(false)", undo, err)
}

// With WithForeignPeer, datagram sockets and message queues carry no
// end-of-stream marker: WithSenders (how many a receiver counts) and
// WithLinger (how long Close waits to post one) did nothing, and are
// refused. The ring keeps its markers with a foreign peer, and takes them.
func TestForeignPeerRefusesMarkerOptions(t *testing.T) {
	ipcchantest.CheckFDs(t)
	foreign := ipcchan.WithForeignPeer()
	senders, linger := ipcchan.WithSenders(2), ipcchan.WithLinger(time.Millisecond)
	for _, tc := range []struct {
		name string
		opt  ipcchan.Option
		make func(t *testing.T, opts []ipcchan.Option) (func() error, error)
	}{
		{"ListenPacket/unixgram", senders, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			rx, _, err := endpoints.ListenPacket[string](optCtx(t), "unixgram", abstractName("opt"), opts...)
			return receiver(rx, err)
		}},
		{"ListenPacket/udp", senders, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			rx, _, err := endpoints.ListenPacket[string](optCtx(t), "udp", "127.0.0.1:0", opts...)
			return receiver(rx, err)
		}},
		{"DialPacket/unixgram", linger, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.DialPacket[string](optCtx(t), "unixgram", packetReceiverFor(t, "unixgram", abstractName("opt")), opts...))
		}},
		{"DialPacket/udp", linger, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.DialPacket[string](optCtx(t), "udp", packetReceiverFor(t, "udp", "127.0.0.1:0"), opts...))
		}},
		{"FileReceiver/unixgram", senders, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_DGRAM)
			return receiver(endpoints.FileReceiver[string](a, opts...))
		}},
		{"OpenMQSender", linger, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.OpenMQSender[string](mqFor(t), opts...))
		}},
		{"OpenMQReceiver", senders, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return receiver(endpoints.OpenMQReceiver[string](mqFor(t), opts...))
		}},
		{"OpenMQBands", senders, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			rxs, err := endpoints.OpenMQBands[string](mqFor(t), []uint32{1}, opts...)
			if err != nil {
				return nil, err
			}
			return closing(rxs[0], rxs[1]), nil
		}},
		{"MQPair/senders", senders, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return pair(endpoints.MQPair[string](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, opts...))
		}},
		{"MQPair/linger", linger, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return pair(endpoints.MQPair[string](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, opts...))
		}},
		{"SysVSender", linger, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.SysVSender[string](sysvQueueFor(t), opts...))
		}},
		{"SysVReceiver", senders, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return receiver(endpoints.SysVReceiver[string](sysvQueueFor(t), endpoints.MsgSelect{}, opts...))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			undo, err := tc.make(t, []ipcchan.Option{tc.opt, foreign})
			wantRefused(t, tc.name, undo, err, tc.opt.Name(), nil)
			undo, err = tc.make(t, []ipcchan.Option{foreign})
			wantAccepted(t, tc.name+" with WithForeignPeer alone", undo, err)
			undo, err = tc.make(t, []ipcchan.Option{tc.opt})
			wantAccepted(t, tc.name+" without WithForeignPeer", undo, err)
		})
	}
	undo, err := pair(endpoints.RingPair[string](4096, foreign, senders, linger))
	wantAccepted(t, "RingPair", undo, err)
}

// A WithTag the transport cannot carry made a Sender whose every Send
// failed; the constructor refuses it now (ErrOption and ErrReservedTag,
// naming ipcchan.WithTag). SendTag with such a tag fails, sending nothing.
func TestTagOutOfTransportRange(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := optCtx(t)
	cases := []struct {
		name string
		tag  uint32
		make func(t *testing.T, opts []ipcchan.Option) (func() error, error)
	}{
		{"OpenMQSender/priority", 32768, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.OpenMQSender[string](mqFor(t), opts...))
		}},
		{"MQPair/priority", math.MaxUint32, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return pair(endpoints.MQPair[string](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, opts...))
		}},
		{"SysVSender/type0", 0, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.SysVSender[string](sysvQueueFor(t), opts...))
		}},
		{"DialPacket/unixgram/marker", 0xFFFFFFFF, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.DialPacket[string](ctx, "unixgram", packetReceiverFor(t, "unixgram", abstractName("opt")), opts...))
		}},
		{"DialPacket/udp/marker", 0xFFFFFFFF, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return sender(endpoints.DialPacket[string](ctx, "udp", packetReceiverFor(t, "udp", "127.0.0.1:0"), opts...))
		}},
		{"DialPacket/foreign", 1, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			opts = append(opts, ipcchan.WithForeignPeer())
			return sender(endpoints.DialPacket[string](ctx, "unixgram", packetReceiverFor(t, "unixgram", abstractName("opt")), opts...))
		}},
		{"SocketPair/files", 0x80000000, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, b, err := endpoints.SocketPair[string, string](opts...)
			if err != nil {
				return nil, err
			}
			return closing(a, b), nil
		}},
		{"Dial/unix/files", 0x80000000, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return conn(endpoints.Dial[string, string](ctx, "unix", listenerFor(t, "unix", abstractName("opt")), opts...))
		}},
		{"FileSender/unix/files", 0xFFFFFFFF, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			a, _ := socketpairFiles(t, unix.SOCK_STREAM)
			return sender(endpoints.FileSender[string](a, opts...))
		}},
		{"PipePair/hello", transport.HandshakeTag, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			return pair(endpoints.PipePair[string](opts...))
		}},
		{"RingPair/hello", transport.HandshakeTag, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			opts = append(opts, ipcchan.WithHandshake(true))
			return pair(endpoints.RingPair[string](4096, opts...))
		}},
		{"PipePair/delimited", 1, func(t *testing.T, opts []ipcchan.Option) (func() error, error) {
			opts = append(opts, ipcchan.WithFraming(codec.DelimitedRecords('\n')))
			return pair(endpoints.PipePair[string](opts...))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			undo, err := tc.make(t, []ipcchan.Option{ipcchan.WithTag(tc.tag)})
			wantRefused(t, tc.name, undo, err, transport.OptTag, ipcchan.ErrReservedTag)
		})
	}
	// Where the tag is free, it is taken.
	undo, err := pair(endpoints.PipePair[string](ipcchan.WithTag(0x80000000)))
	wantAccepted(t, "PipePair with a files tag (a pipe carries no files)", undo, err)
	undo, err = pair(endpoints.PipePair[string](ipcchan.WithTag(transport.HandshakeTag), ipcchan.WithHandshake(false)))
	wantAccepted(t, "PipePair with the hello's tag and no hello", undo, err)

	// SendTag with the hello's tag, on a channel whose hello is on, is
	// refused, and the stream goes on: its receiver took the value for a
	// hello and failed for good.
	tx, rx, err := endpoints.PipePair[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	defer tx.Close()
	if err := tx.Send(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	if err := tx.SendTag(ctx, transport.HandshakeTag, "forged"); !errors.Is(err, ipcchan.ErrReservedTag) {
		t.Fatalf("SendTag with the hello's tag = %v, want ErrReservedTag", err)
	}
	fill := func(b []byte) (int, error) { return copy(b, "forged"), nil }
	if err := tx.SendRaw(ctx, transport.HandshakeTag, 6, fill); !errors.Is(err, ipcchan.ErrReservedTag) {
		t.Fatalf("SendRaw with the hello's tag = %v, want ErrReservedTag", err)
	}
	if err := tx.Send(ctx, "second"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first", "second"} {
		if v, err := rx.Recv(ctx); err != nil || v != want {
			t.Fatalf("Recv = %q, %v; want %q", v, err, want)
		}
	}
}

// A handed-down SysV queue of type 0 (a receiver's "every type") cannot
// be a Sender's: refused with ErrMsgType, not with a WithTag the program
// never gave.
func TestInheritSysVSenderTypeZero(t *testing.T) {
	name := "opt" + strconv.FormatInt(inheritSeq.Add(1), 10)
	t.Setenv(endpoints.EnvFiles, fmt.Sprintf("%s=sysvmq:%d:0:", name, sysvQueueFor(t).ID()))
	tx, err := endpoints.InheritSender[string](name)
	if err == nil {
		tx.Close()
	}
	if !errors.Is(err, endpoints.ErrMsgType) {
		t.Fatalf("InheritSender of type 0 = %v, want ErrMsgType", err)
	}
}

// Untagged records (WithFraming) carry no tag, so neither a hello nor
// files: WithHandshake(true) and WithRecvFiles with one are refused as
// options (they were refused without ErrOption, or, for files, accepted).
func TestUntaggedFramingRefusesTaggedOptions(t *testing.T) {
	ipcchantest.CheckFDs(t)
	lines := ipcchan.WithFraming(codec.DelimitedRecords('\n'))
	a, b, err := endpoints.SocketPair[string, string](lines, ipcchan.WithRecvFiles(4))
	if err == nil {
		a.Close()
		b.Close()
	}
	wantRefused(t, "SocketPair", nil, err, transport.OptRecvFiles, nil)
	undo, err := pair(endpoints.PipePair[string](lines, ipcchan.WithHandshake(true)))
	wantRefused(t, "PipePair", undo, err, transport.OptHandshake, nil)
	undo, err = pair(endpoints.PipePair[string](lines, ipcchan.WithTag(0)))
	wantAccepted(t, "PipePair with tag 0", undo, err)
}

// A Conn carries two types, S out and R in: each half takes the codec
// given for its type, so that both can have one. (The last WithCodec was
// used for both, so a Conn of two types could have a codec for neither.)
// A codec of neither type is refused by name.
func TestConnCodecPerSide(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := optCtx(t)
	codecs := []ipcchan.Option{ipcchan.WithCodec(codec.JSON[int]()), ipcchan.WithCodec(codec.Gob[string]())}
	a, b, err := endpoints.SocketPair[int, string](codecs...)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	if err := a.Send(ctx, 42); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(ctx, "answer"); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Recv(ctx); err != nil || v != 42 {
		t.Fatalf("b received %v, %v", v, err)
	}
	if v, err := a.Recv(ctx); err != nil || v != "answer" {
		t.Fatalf("a received %q, %v", v, err)
	}

	// Listen and Dial alike, on a stream and on seqpacket.
	for _, network := range []string{"unix", "unixpacket"} {
		l, err := endpoints.Listen[string, int](ctx, network, abstractName("codec"), codecs...)
		if err != nil {
			t.Fatal(err)
		}
		c, err := endpoints.Dial[int, string](ctx, network, l.Addr(), codecs...)
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(ctx, 7); err != nil {
			t.Fatal(err)
		}
		if v, err := s.Recv(ctx); err != nil || v != 7 {
			t.Fatalf("%s: the server received %v, %v", network, v, err)
		}
		c.Close()
		s.Close()
		l.Close()
	}

	l, err := endpoints.Listen[int, string](ctx, "unix", abstractName("codec"), ipcchan.WithCodec(codec.JSON[float64]()))
	if err == nil {
		l.Close()
	}
	wantRefused(t, "Listen with a codec of neither type", nil, err, transport.OptCodec, nil)
	x, y, err := endpoints.SocketPair[int, string](ipcchan.WithCodec(codec.JSON[float64]()))
	if err == nil {
		x.Close()
		y.Close()
	}
	wantRefused(t, "SocketPair with a codec of neither type", nil, err, transport.OptCodec, nil)
	var oe *ipcchan.OpError
	if !errors.As(err, &oe) {
		t.Errorf("%v is not an *ipcchan.OpError", err)
	}
	ptx, prx, err := endpoints.PipePair[int](ipcchan.WithCodec(codec.JSON[string]()))
	if err == nil {
		ptx.Close()
		prx.Close()
	}
	wantRefused(t, "PipePair with a codec of another type", nil, err, transport.OptCodec, nil)
	if !errors.As(err, &oe) {
		t.Errorf("%v is not an *ipcchan.OpError", err)
	}
}

// An option given twice takes its last value.
func TestOptionGivenTwice(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := optCtx(t)
	for _, tc := range []struct {
		first, last int
		ok          bool
	}{{30, 100, true}, {100, 30, false}} { // above the hello
		tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithMaxMessageSize(tc.first), ipcchan.WithMaxMessageSize(tc.last))
		if err != nil {
			t.Fatal(err)
		}
		err = tx.Send(ctx, make([]byte, 50))
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ipcchan.ErrMessageTooLarge)) {
			t.Errorf("WithMaxMessageSize(%d), WithMaxMessageSize(%d): a 50-byte Send = %v", tc.first, tc.last, err)
		}
		tx.Close()
		rx.Close()
	}
}

// A pair constructor makes both ends, so it takes both sides' options at
// once, each end reading its own.
func TestPairsTakeBothSidesOptions(t *testing.T) {
	ipcchantest.CheckFDs(t)
	common := []ipcchan.Option{ipcchan.WithCodec(codec.JSON[string]()), ipcchan.WithMaxMessageSize(512), ipcchan.WithHandshake(true)}
	stream := append(common[:len(common):len(common)], ipcchan.WithTag(3), ipcchan.WithSendBuffer(0), ipcchan.WithLinger(time.Millisecond),
		ipcchan.WithAtomicWrites(true), ipcchan.WithFraming(codec.Frames))
	message := append(common[:len(common):len(common)], ipcchan.WithTag(3), ipcchan.WithLinger(time.Millisecond), ipcchan.WithSenders(1))
	ctx := optCtx(t)
	check := func(name string, tx *ipcchan.Sender[string], rx *ipcchan.Receiver[string], err error) {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		defer rx.Close()
		if err := tx.Send(ctx, "v"); err != nil {
			t.Errorf("%s: Send: %v", name, err)
		}
		if err := tx.Close(); err != nil {
			t.Errorf("%s: Close: %v", name, err)
		}
		if v, tag, err := rx.RecvTag(ctx); err != nil || v != "v" || tag != 3 {
			t.Errorf("%s: RecvTag = %q, %d, %v; want \"v\", 3", name, v, tag, err)
		}
	}
	tx, rx, err := endpoints.PipePair[string](stream...)
	check("PipePair", tx, rx, err)
	a, b, err := endpoints.SocketPair[string, string](append(stream, ipcchan.WithRecvFiles(1), endpoints.SameUser())...)
	if err != nil {
		t.Errorf("SocketPair: %v", err)
	} else {
		defer b.Close()
		check("SocketPair", a.Sender(), b.Receiver(), nil)
		a.Close()
	}
	tx, rx, err = endpoints.MQPair[string](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, append(message, ipcchan.WithHandshake(false))...)
	check("MQPair", tx, rx, err)
	tx, rx, err = endpoints.RingPair[string](4096, message...)
	check("RingPair", tx, rx, err)
}

// Huge values, as a careless program passes them for "no limit", are
// limits like any other: no overflow, no panic. With WithMaxMessageSize
// (math.MaxInt) a delimited record's length overflowed: a FIFO's atomic
// writes let records past PIPE_BUF through, and a receiver panicked
// (slice out of range) on its first line, or on a peer's 8-byte length
// prefix near 2^63.
func TestHugeOptionValues(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := optCtx(t)
	noLimit := ipcchan.WithMaxMessageSize(math.MaxInt)
	lines := ipcchan.WithFraming(codec.DelimitedRecords('\n'))

	// A FIFO's sender keeps records within PIPE_BUF, whatever the limit.
	path := shortDir(t) + "/f"
	if err := endpoints.CreateFIFO(path); err != nil {
		t.Fatal(err)
	}
	frx, err := endpoints.OpenFIFOReceiver[string](ctx, path, lines, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer frx.Close()
	ftx, err := endpoints.OpenFIFOSender[string](ctx, path, lines, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	defer ftx.Close()
	if err := ftx.Send(ctx, strings.Repeat("x", 5000)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Errorf("a 5000-byte record on a FIFO with atomic writes: %v, want ErrMessageTooLarge", err)
	}

	// Receivers read records with no limit, and refuse a prefix beyond
	// what they can hold.
	prefix8, err := codec.LengthPrefixed(8, binary.BigEndian, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		framing codec.Framing
		in      []byte
		want    string // "" for an error
	}{
		{"delimited", codec.DelimitedRecords('\n'), []byte("line\n"), "line"},
		{"u64-prefix", prefix8, append(binary.BigEndian.AppendUint64(nil, 4), "four"...), "four"},
		{"u64-prefix-huge", prefix8, binary.BigEndian.AppendUint64(nil, math.MaxInt64), ""},
		{"u64-prefix-huge-after-one", prefix8, append(append(binary.BigEndian.AppendUint64(nil, 1), 'x'), binary.BigEndian.AppendUint64(nil, math.MaxInt64-8)...), "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w := must2(t, os.Pipe)
			rx, err := endpoints.FileReceiver[string](r, ipcchan.WithFraming(tc.framing), noLimit)
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			if _, err := w.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			w.Close()
			v, err := rx.Recv(ctx)
			switch {
			case tc.want == "" && err == nil:
				t.Fatalf("Recv = %q, want an error", v)
			case tc.want != "" && (err != nil || v != tc.want):
				t.Fatalf("Recv = %q, %v; want %q", v, err, tc.want)
			}
			if tc.want != "" {
				// What follows ends the stream, without a panic or a hang.
				if v, err := rx.Recv(ctx); err == nil {
					t.Fatalf("second Recv = %q, want the end", v)
				}
			}
		})
	}

	// The other huge values are taken as limits.
	tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithSendBuffer(math.MaxInt), ipcchan.WithLinger(math.MaxInt64), noLimit)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	if v, err := rx.Recv(ctx); err != nil || len(v) != 100<<10 {
		t.Fatalf("Recv = %d bytes, %v", len(v), err)
	}
	tx.Close()
	rx.Close()
	mtx, mrx, err := endpoints.MQPair[[]byte](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 1024}, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	if err := mtx.Send(ctx, make([]byte, 1025)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Errorf("a message over the queue's size with no limit of our own: %v, want ErrMessageTooLarge", err)
	}
	mtx.Close()
	mrx.Close()
	rtx, rrx, err := endpoints.RingPair[[]byte](4096, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtx.Send(ctx, make([]byte, 4096)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Errorf("a message over the ring's record size with no limit of our own: %v, want ErrMessageTooLarge", err)
	}
	rtx.Close()
	rrx.Close()
	l, err := endpoints.Listen[string, string](ctx, "unix", abstractName("opt"), ipcchan.WithConnMemory(math.MaxInt), noLimit)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}

// An option is what it was when it was made: WithTrustedOwners and
// AllowIDs kept the caller's slice, so a change to it afterwards changed
// the option — past the range check WithTrustedOwners had made.
func TestOptionValuesAreCopied(t *testing.T) {
	ipcchantest.CheckFDs(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another uid")
	}
	const other = 54321
	path := shortDir(t) + "/l"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, other, other); err != nil {
		t.Fatal(err)
	}
	uids := []int{other}
	trust := ipcchan.WithTrustedOwners(uids...)
	uids[0] = 0
	l, err := endpoints.OpenLock(path, endpoints.OFDLocks, trust)
	if err != nil {
		t.Fatalf("OpenLock of uid %d's file, trusting it: %v", other, err)
	}
	l.Close()

	ids := []int{os.Getuid()}
	allow := endpoints.AllowIDs(ids, nil)
	ids[0] = -5
	a, b, err := endpoints.SocketPair[string, string](allow)
	if err != nil {
		t.Fatalf("SocketPair allowing this uid: %v", err)
	}
	a.Close()
	b.Close()
}

// WithTrustedOwners given twice trusts the uids of both.
func TestTrustedOwnersAddUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another uid")
	}
	const other = 54321
	path := shortDir(t) + "/l"
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, other, other); err != nil {
		t.Fatal(err)
	}
	l, err := endpoints.OpenLock(path, endpoints.OFDLocks, ipcchan.WithTrustedOwners(other), ipcchan.WithTrustedOwners(1))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err := endpoints.OpenLock(path, endpoints.OFDLocks, ipcchan.WithTrustedOwners(1)); !errors.Is(err, os.ErrPermission) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("OpenLock of uid %d's file, trusting uid 1 only: %v, want ErrPermission", other, err)
	}
}

// A framing whose records no limit lets through, or that cannot keep the
// PIPE_BUF rule, is refused as an option when the end is made: fixed
// records longer than WithMaxMessageSize ended the stream at the first
// receive; fixed records over PIPE_BUF with atomic writes were refused
// without ErrOption.
func TestFramingRefusedWithItsLimits(t *testing.T) {
	ipcchantest.CheckFDs(t)
	fixed := ipcchan.WithFraming(codec.FixedRecords(128))
	undo, err := pair(endpoints.PipePair[string](fixed, ipcchan.WithMaxMessageSize(64)))
	wantRefused(t, "128-byte records, 64-byte limit", undo, err, transport.OptFraming, codec.ErrFrameTooLarge)
	undo, err = pair(endpoints.PipePair[string](ipcchan.WithFraming(codec.FixedRecords(5000)), ipcchan.WithAtomicWrites(true)))
	wantRefused(t, "5000-byte records, atomic writes", undo, err, transport.OptFraming, ipcchan.ErrMessageTooLarge)

	tx, rx, err := endpoints.PipePair[string](fixed, ipcchan.WithMaxMessageSize(128), ipcchan.WithCodec(codec.CText(128)))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	defer tx.Close()
	ctx := optCtx(t)
	if err := tx.Send(ctx, "record"); err != nil {
		t.Fatal(err)
	}
	if v, err := rx.Recv(ctx); err != nil || v != "record" {
		t.Fatalf("Recv = %q, %v", v, err)
	}
}

// With the handshake on, the hello is the channel's first message: a
// WithMaxMessageSize shorter than it made every Send fail on the hello
// ("25 bytes, limit 10" for a one-byte value) and a receiver refuse it.
// Refused when the end is made, as is WithHandshake(true) on a transport
// whose messages the hello does not fit.
func TestLimitBelowTheHello(t *testing.T) {
	ipcchantest.CheckFDs(t)
	small := ipcchan.WithMaxMessageSize(10)
	undo, err := pair(endpoints.PipePair[string](small))
	wantRefused(t, "PipePair", undo, err, transport.OptMaxMessageSize, nil)
	undo, err = receiver(endpoints.OpenFIFOReceiver[string](optCtx(t), fifoPath(t), small))
	wantRefused(t, "OpenFIFOReceiver", undo, err, transport.OptMaxMessageSize, nil)
	undo, err = pair(endpoints.RingPair[string](4096, small, ipcchan.WithHandshake(true)))
	wantRefused(t, "RingPair", undo, err, transport.OptMaxMessageSize, nil)
	undo, err = pair(endpoints.RingPair[string](256+64, ipcchan.WithHandshake(true))) // 24-byte records
	wantRefused(t, "a tiny RingPair", undo, err, transport.OptHandshake, nil)
	undo, err = pair(endpoints.PipePair[string](small, ipcchan.WithHandshake(false)))
	wantAccepted(t, "PipePair without the hello", undo, err)
	undo, err = pair(endpoints.RingPair[string](4096, small))
	wantAccepted(t, "RingPair without the hello", undo, err)
}
