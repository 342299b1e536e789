package endpoints_test

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
)

var queueBenchSizes = []int{64, 4096}

// queueKinds makes, for each message-queue family, a pair of ipcchan
// queues and a pair of raw ones for the benchmarks.
var queueKinds = []struct {
	name string
	pair func(b *testing.B) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte])
	raw  func(b *testing.B) rawQueue
}{
	{"posixmq", benchMQPair, newRawMQ},
	{"sysvmq", benchSysVPair, newRawSysV},
}

func benchMQPair(b *testing.B) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte]) {
	tx, rx, err := endpoints.MQPair[[]byte](endpoints.MQAttr{MaxMsgs: 10, MsgSize: 8192})
	if err != nil {
		b.Skip(err)
	}
	return tx, rx
}

func benchSysVPair(b *testing.B) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte]) {
	q, err := newTestQueue()
	if err != nil {
		b.Skip(err)
	}
	tx, _ := endpoints.SysVSender[[]byte](q)
	rx, _ := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{})
	return tx, rx
}

// BenchmarkQueueRoundTrip measures a message sent to a child process over
// one queue and echoed back over another: through ipcchan, and with raw
// blocking mq_timedsend/mq_timedreceive or msgsnd/msgrcv calls from Go in
// the same run.
func BenchmarkQueueRoundTrip(b *testing.B) {
	for _, k := range queueKinds {
		for _, size := range queueBenchSizes {
			b.Run(k.name+"/ipcchan/"+sizeName(size), func(b *testing.B) {
				toChild, in := k.pair(b)
				out, fromChild := k.pair(b)
				p := startHelper(b, "echo", nil, endpoints.Pass("in", in), endpoints.Pass("out", out))
				b.Cleanup(func() { toChild.Close(); fromChild.Close() })
				ctx := context.Background()
				msg := make([]byte, size)
				var buf []byte
				roundTrip := func() {
					if err := toChild.Send(ctx, msg); err != nil {
						b.Fatal(err)
					}
					if err := fromChild.RecvInto(ctx, &buf); err != nil {
						b.Fatal(err)
					}
				}
				measureRoundTrips(b, size, p.cmd.Process.Pid, roundTrip)
			})
			b.Run(k.name+"/raw/"+sizeName(size), func(b *testing.B) {
				in, out := k.raw(b), k.raw(b)
				cmd := startRawQueueChild(b, "raw-queue-echo", in, out)
				msg := make([]byte, size)
				buf := make([]byte, 8192)
				roundTrip := func() {
					in.send(b, msg)
					out.recv(b, buf)
				}
				measureRoundTrips(b, size, cmd.Process.Pid, roundTrip)
				in.send(b, nil) // the child's signal to stop
			})
		}
	}
}

// BenchmarkQueueThroughput measures one-way messages to a child that takes
// them all, through ipcchan and with raw blocking calls in the same run.
func BenchmarkQueueThroughput(b *testing.B) {
	for _, k := range queueKinds {
		for _, size := range queueBenchSizes {
			b.Run(k.name+"/ipcchan/"+sizeName(size), func(b *testing.B) {
				tx, in := k.pair(b)
				out, ackRx := k.pair(b)
				startHelper(b, "sink", nil, endpoints.Pass("in", in), endpoints.Pass("out", out))
				b.Cleanup(func() { ackRx.Close() })
				sendAllAndCount(b, tx, ackRx, size)
			})
			b.Run(k.name+"/raw/"+sizeName(size), func(b *testing.B) {
				in, out := k.raw(b), k.raw(b)
				startRawQueueChild(b, "raw-queue-sink", in, out)
				msg := make([]byte, size)
				buf := make([]byte, 8192)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					in.send(b, msg)
				}
				in.send(b, nil)
				n := out.recv(b, buf)
				b.StopTimer()
				if got := binary.NativeEndian.Uint64(buf[:n]); got != uint64(b.N) {
					b.Fatalf("child received %d messages, want %d", got, b.N)
				}
			})
		}
	}
}

// rawQueue is a queue driven by plain blocking system calls.
type rawQueue interface {
	send(b *testing.B, msg []byte)
	recv(b *testing.B, buf []byte) int
}

type rawMQ struct{ fd int }

func newRawMQ(b *testing.B) rawQueue {
	name := "ipcchan-bench-" + strconv.Itoa(os.Getpid())
	fd, err := sys.MqOpen(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600, &sys.MqAttr{Maxmsg: 10, Msgsize: 8192})
	if err != nil {
		b.Skip(err)
	}
	sys.MqUnlink(name)
	b.Cleanup(func() { unix.Close(fd) })
	return &rawMQ{fd}
}

// The raw calls retry on EINTR: the Go runtime's preemption signals
// interrupt blocking System V and POSIX queue calls.

func (q *rawMQ) send(b *testing.B, msg []byte) {
	var err error = unix.EINTR
	for err == unix.EINTR {
		err = sys.MqTimedsend(q.fd, msg, 0, nil)
	}
	if err != nil {
		b.Fatal(err)
	}
}

func (q *rawMQ) recv(b *testing.B, buf []byte) int {
	for {
		n, _, err := sys.MqTimedreceive(q.fd, buf, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
}

type rawSysV struct {
	id  int
	out []byte
}

func newRawSysV(b *testing.B) rawQueue {
	q, err := newTestQueue()
	if err != nil {
		b.Skip(err)
	}
	return &rawSysV{id: q.ID()}
}

func (q *rawSysV) send(b *testing.B, msg []byte) {
	q.out = sys.AppendMtype(q.out[:0], 1)
	q.out = append(q.out, msg...)
	var err error = unix.EINTR
	for err == unix.EINTR {
		err = sys.Msgsnd(q.id, q.out, 0)
	}
	if err != nil {
		b.Fatal(err)
	}
}

func (q *rawSysV) recv(b *testing.B, buf []byte) int {
	n, err := sys.Msgrcv(q.id, buf, 0, 0)
	for err == unix.EINTR {
		n, err = sys.Msgrcv(q.id, buf, 0, 0)
	}
	if err != nil {
		b.Fatal(err)
	}
	copy(buf, buf[sys.MtypeSize:sys.MtypeSize+n])
	return n
}

// startRawQueueChild starts role with the two raw queues in its
// environment: a POSIX queue descriptor goes down in ExtraFiles, a SysV
// queue by identifier.
func startRawQueueChild(b *testing.B, role string, in, out rawQueue) *exec.Cmd {
	cmd := helperCmd(b, role)
	for i, q := range []rawQueue{in, out} {
		name := [...]string{"IPCCHAN_RAW_IN", "IPCCHAN_RAW_OUT"}[i]
		if m, ok := q.(*rawMQ); ok {
			cmd.Env = append(cmd.Env, name+"=mq:"+strconv.Itoa(3+len(cmd.ExtraFiles)))
			cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(m.fd), "mq"))
			continue
		}
		cmd.Env = append(cmd.Env, name+"=sysv:"+strconv.Itoa(q.(*rawSysV).id))
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Wait() })
	return cmd
}

// childRawQueue opens a raw queue from the environment in a child.
func childRawQueue(name string) rawQueue {
	v := os.Getenv(name)
	if s, ok := strings.CutPrefix(v, "mq:"); ok {
		fd, _ := strconv.Atoi(s)
		return &rawMQ{fd}
	}
	id, _ := strconv.Atoi(strings.TrimPrefix(v, "sysv:"))
	return &rawSysV{id: id}
}

func init() {
	// raw-queue-echo echoes raw queue messages until an empty one.
	childRoles["raw-queue-echo"] = func() error {
		in, out := childRawQueue("IPCCHAN_RAW_IN"), childRawQueue("IPCCHAN_RAW_OUT")
		buf := make([]byte, sys.MtypeSize+8192)
		b := &testing.B{}
		for {
			n := in.recv(b, buf)
			if n == 0 {
				return nil
			}
			out.send(b, buf[:n])
		}
	}
	// raw-queue-sink counts raw queue messages until an empty one, then
	// sends the count.
	childRoles["raw-queue-sink"] = func() error {
		in, out := childRawQueue("IPCCHAN_RAW_IN"), childRawQueue("IPCCHAN_RAW_OUT")
		buf := make([]byte, sys.MtypeSize+8192)
		b := &testing.B{}
		var n uint64
		for in.recv(b, buf) != 0 {
			n++
		}
		out.send(b, binary.NativeEndian.AppendUint64(nil, n))
		return nil
	}
}

// BenchmarkSysVQueueSendReceive measures SysVQueue.Send and Receive (the
// whole-type msgsnd and msgrcv) in one process, 64-byte messages.
func BenchmarkSysVQueueSendReceive(b *testing.B) {
	q, err := newTestQueue()
	if err != nil {
		b.Skip(err)
	}
	ctx := context.Background()
	msg, buf := make([]byte, 64), make([]byte, 64)
	b.SetBytes(64)
	b.ReportAllocs()
	for b.Loop() {
		if err := q.Send(ctx, 1<<40, msg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := q.Receive(ctx, endpoints.MsgSelect{}, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueueSendRecv measures Send then RecvInto of one 64-byte
// message within one process, the per-message cost of the queue transports
// themselves: a plain value, and one that begins like the end-of-stream
// marker and so travels escaped.
func BenchmarkQueueSendRecv(b *testing.B) {
	for _, k := range queueKinds {
		for _, v := range []struct{ name, prefix string }{{"plain", ""}, {"escaped", "\x00IPCCHAN-EOS\x00\x00\x00"}} {
			b.Run(k.name+"/"+v.name+"/64B", func(b *testing.B) {
				tx, rx := k.pair(b)
				defer tx.Close()
				defer rx.Close()
				ctx := context.Background()
				msg := append([]byte(v.prefix), make([]byte, 64-len(v.prefix))...)
				var buf []byte
				b.SetBytes(64)
				b.ReportAllocs()
				for b.Loop() {
					if err := tx.Send(ctx, msg); err != nil {
						b.Fatal(err)
					}
					if err := rx.RecvInto(ctx, &buf); err != nil {
						b.Fatal(err)
					}
				}
				if string(buf) != string(msg) {
					b.Fatalf("received %q, want %q", buf, msg)
				}
			})
		}
	}
}
