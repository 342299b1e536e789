package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/go/internal/benchstats"
	"go.uber.org/goleak"
)

// envRole names the part a re-executed test binary plays: "<peer>/<mode>",
// mode being "echo" or "sink", with the message size in envSize.
const (
	envRole = "BENCH_ROLE"
	envSize = "BENCH_SIZE"
)

// peers maps a peer name to the function that runs it in the child.
var peers = map[string]func(mode string, size int) error{}

func TestMain(m *testing.M) {
	if role, ok := os.LookupEnv(envRole); ok {
		name, mode, _ := strings.Cut(role, "/")
		size, _ := strconv.Atoi(os.Getenv(envSize))
		run := peers[name]
		if run == nil {
			fmt.Fprintf(os.Stderr, "no peer %q\n", name)
			os.Exit(2)
		}
		if err := run(mode, size); err != nil {
			fmt.Fprintf(os.Stderr, "peer %s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// golang-ipc's client leaves goroutines behind after Close (they wait
	// to reconnect), and shmipc-go keeps a process-wide epoll loop: the
	// libraries' own, not ours.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/james-barrow/golang-ipc.(*Client).reconnect"),
		goleak.IgnoreAnyFunction("github.com/james-barrow/golang-ipc.(*Client).read"),
		goleak.IgnoreAnyFunction("github.com/james-barrow/golang-ipc.(*Client).write"),
		goleak.IgnoreAnyFunction("github.com/cloudwego/shmipc-go.(*epollDispatcher).runLoop.func1"))
}

// child returns the command that runs peer in mode with messages of size.
func child(peer, mode string, size int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), envRole+"="+peer+"/"+mode, envSize+"="+strconv.Itoa(size))
	cmd.Stderr = os.Stderr
	return cmd
}

// sizes are the message sizes of the one-way benchmarks.
var sizes = []struct {
	name string
	n    int
}{{"64B", 64}, {"4KiB", 4 << 10}, {"64KiB", 64 << 10}}

// A conn is this process's side of one benchmark's exchange.
type conn interface {
	send(msg []byte) error
	recv(buf []byte) error // fills buf with the next message
	close() error          // and waits for the child
	pid() int              // the child's process ID, 0 for an in-process peer
}

// roundTrip measures send-and-receive-back of size-byte messages, after
// one untimed exchange that makes sure the child is up; benchstats.TimeRoundTrips
// adds the latency percentiles and both processes' CPU time per op.
func roundTrip(b *testing.B, c conn, size int) {
	msg, buf := make([]byte, size), make([]byte, size)
	exchange := func() {
		if err := c.send(msg); err != nil {
			b.Fatal(err)
		}
		if err := c.recv(buf); err != nil {
			b.Fatal(err)
		}
	}
	exchange()
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	benchstats.TimeRoundTrips(b, c.pid(), exchange)
	if err := c.close(); err != nil {
		b.Fatal(err)
	}
}

// oneWay measures b.N size-byte messages to a child that acknowledges
// the last; the count goes first, in an 8-byte message of its own. An
// untimed batch of no messages (a count of 0, acknowledged) makes sure
// the child is up before the timer starts. It reports both processes'
// CPU time per message besides ns/op.
func oneWay(b *testing.B, c conn, size int) {
	msg := make([]byte, size)
	head, ack := make([]byte, 8), make([]byte, 1)
	if err := c.send(head); err != nil {
		b.Fatal(err)
	}
	if err := c.recv(ack); err != nil {
		b.Fatal(err)
	}
	binary.LittleEndian.PutUint64(head, uint64(b.N))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := benchstats.StartCPU(c.pid())
	b.ResetTimer()
	if err := c.send(head); err != nil {
		b.Fatal(err)
	}
	for range b.N {
		if err := c.send(msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.recv(ack); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu.Report(b)
	if err := c.close(); err != nil {
		b.Fatal(err)
	}
}

// serve runs a child's side: in "echo" mode every message goes back; in
// "sink" mode the first message holds a count of messages to take, then
// one byte acknowledges them. recv returns false at the end of the input.
func serve(mode string, size int, recv func(buf []byte) (bool, error), send func(msg []byte) error) error {
	buf := make([]byte, max(size, 8))
	switch mode {
	case "echo":
		for {
			ok, err := recv(buf[:size])
			if !ok || err != nil {
				return err
			}
			if err := send(buf[:size]); err != nil {
				return err
			}
		}
	case "sink":
		for {
			ok, err := recv(buf[:8])
			if !ok || err != nil {
				return err
			}
			n := binary.LittleEndian.Uint64(buf)
			for range n {
				if _, err := recv(buf[:size]); err != nil {
					return err
				}
			}
			if err := send(buf[:1]); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("unknown mode %q", mode)
}
