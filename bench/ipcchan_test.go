package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// An ipcchan endpoint kind: pair makes one direction of a channel.
type kind struct {
	name   string
	max    int  // largest message, 0 for no limit below 64 KiB
	stream bool // a byte stream, whose senders take WithAtomicWrites
	pair   func() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error)
}

var kinds = []kind{
	{name: "pipe", stream: true, pair: func() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return endpoints.PipePair[[]byte]()
	}},
	{name: "unix", stream: true, pair: func() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) { return sockPair("unix") }},
	{name: "unixpacket", pair: func() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) { return sockPair("unixpacket") }},
	{name: "tcp", stream: true, pair: func() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) { return sockPair("tcp") }},
	{name: "unixgram", pair: func() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return packetPair("unixgram", fmt.Sprintf("@ipcchan-bench-%d-%d", os.Getpid(), nextID()))
	}},
	{name: "posixmq", max: 8192, pair: func() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return endpoints.MQPair[[]byte](endpoints.MQAttr{MaxMsgs: 10, MsgSize: 8192})
	}},
	{name: "sysvmq", max: 8192, pair: sysvPair},
	{name: "ring", pair: func() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return endpoints.RingPair[[]byte](1 << 20)
	}},
}

var idSeq int

func nextID() int { idSeq++; return idSeq }

func sockPair(network string) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
	ctx := context.Background()
	addr := "127.0.0.1:0"
	if network != "tcp" {
		dir, err := os.MkdirTemp("", "ipcchan-bench-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(dir)
		addr = filepath.Join(dir, "s")
	}
	l, err := endpoints.Listen[[]byte, []byte](ctx, network, addr)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	client, err := endpoints.Dial[[]byte, []byte](ctx, network, l.Addr())
	if err != nil {
		return nil, nil, err
	}
	server, err := l.Accept(ctx)
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	client.Receiver().Close()
	server.Sender().Close()
	return client.Sender(), server.Receiver(), nil
}

func packetPair(network, addr string) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
	ctx := context.Background()
	rx, addr, err := endpoints.ListenPacket[[]byte](ctx, network, addr)
	if err != nil {
		return nil, nil, err
	}
	tx, err := endpoints.DialPacket[[]byte](ctx, network, addr)
	if err != nil {
		rx.Close()
		return nil, nil, err
	}
	return tx, rx, nil
}

func sysvPair() (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
	q, err := endpoints.CreateSysVQueue(endpoints.ObjectKey())
	if err != nil {
		return nil, nil, err
	}
	tx, err := endpoints.SysVSender[[]byte](q)
	if err != nil {
		q.Remove()
		return nil, nil, err
	}
	rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{})
	if err != nil {
		tx.Close()
		q.Remove()
		return nil, nil, err
	}
	removeLater = append(removeLater, q.Remove)
	return tx, rx, nil
}

// removeLater holds what must go once a benchmark's child has exited.
var removeLater []func() error

// ipcchanConn is this side of two channels of one kind to a child.
type ipcchanConn struct {
	tx  *ipcchan.Sender[[]byte]
	rx  *ipcchan.Receiver[[]byte]
	cmd *exec.Cmd
	buf []byte
}

func dialIPCChan(k kind, mode string, size int) (*ipcchanConn, error) {
	tx, in, err := k.pair()
	if err != nil {
		return nil, err
	}
	out, rx, err := k.pair()
	if err != nil {
		tx.Close()
		in.Close()
		return nil, err
	}
	cmd := k.child("ipcchan", mode, size)
	if err := endpoints.Start(cmd, endpoints.Pass("in", in), endpoints.Pass("out", out)); err != nil {
		tx.Close()
		rx.Close()
		return nil, err
	}
	if k.name == "unixgram" || k.name == "posixmq" || k.name == "sysvmq" || k.name == "ring" {
		rx.WatchPeer(cmd.Process.Pid)
	}
	return &ipcchanConn{tx: tx, rx: rx, cmd: cmd}, nil
}

func (c *ipcchanConn) send(msg []byte) error { return c.tx.Send(context.Background(), msg) }
func (c *ipcchanConn) pid() int              { return c.cmd.Process.Pid }

// recv receives into buf itself, as the raw side reads into it: RecvInto
// reuses the memory of its destination, and reads a large message there
// straight from the kernel.
func (c *ipcchanConn) recv(buf []byte) error {
	c.buf = buf[:0]
	err := c.rx.RecvInto(context.Background(), &c.buf)
	copyInto(buf, c.buf)
	return err
}

// copyInto copies msg into buf unless msg is already there.
func copyInto(buf, msg []byte) {
	if len(msg) > 0 && len(buf) > 0 && &msg[0] == &buf[0] {
		return
	}
	copy(buf, msg)
}

func (c *ipcchanConn) close() error {
	c.tx.Close()
	err := c.cmd.Wait()
	c.rx.Close()
	for _, f := range removeLater {
		f()
	}
	removeLater = nil
	return err
}

func init() {
	peers["ipcchan"] = func(mode string, size int) error {
		rx, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		tx, err := endpoints.InheritSender[[]byte]("out", onlyWriter()...)
		if err != nil {
			return err
		}
		defer tx.Close()
		ctx := context.Background()
		var msg []byte
		return serve(mode, size, func(buf []byte) (bool, error) {
			msg = buf[:0] // into buf itself, as the raw peers read
			err := rx.RecvInto(ctx, &msg)
			if err != nil {
				return false, ignoreEOF(err)
			}
			copyInto(buf, msg)
			return true, nil
		}, func(msg []byte) error { return tx.Send(ctx, msg) })
	}
}

// roundTripSizes are the message sizes of the round-trip benchmarks.
var roundTripSizes = sizes[:2]

// BenchmarkIPCChanRoundTrip/KIND/SIZE: a message there and back.
func BenchmarkIPCChanRoundTrip(b *testing.B) {
	for _, k := range kinds {
		for _, s := range roundTripSizes {
			b.Run(k.name+"/"+s.name, func(b *testing.B) {
				c, err := dialIPCChan(k, "echo", s.n)
				if err != nil {
					b.Fatal(err)
				}
				roundTrip(b, c, s.n)
			})
		}
	}
}

func BenchmarkIPCChanOneWay(b *testing.B) {
	for _, k := range kinds {
		for _, s := range sizes {
			if k.max > 0 && s.n > k.max {
				continue
			}
			b.Run(k.name+"/"+s.name, func(b *testing.B) {
				c, err := dialIPCChan(k, "sink", s.n)
				if err != nil {
					b.Fatal(err)
				}
				oneWay(b, c, s.n)
			})
		}
	}
}

// envStream tells a child that its ends are byte streams.
const envStream = "BENCH_STREAM"

// child is the command of a child that speaks over channels of kind k.
func (k kind) child(peer, mode string, size int) *exec.Cmd {
	cmd := child(peer, mode, size)
	if k.stream {
		cmd.Env = append(cmd.Env, envStream+"=1")
	}
	return cmd
}

// onlyWriter is the options of a child's sender that is its end's only
// writer: on a byte stream, frames need not stay within PIPE_BUF.
func onlyWriter() []ipcchan.Option {
	if os.Getenv(envStream) == "1" {
		return []ipcchan.Option{ipcchan.WithAtomicWrites(false)}
	}
	return nil
}
