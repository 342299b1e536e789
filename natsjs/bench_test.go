package natsjs_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/natsjs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// The benchmarks compare, in one run, a round trip (a value there and an
// answer back) and one-way throughput (N values, then one "done") between
// this process and a child process (this test binary re-executed), over
//
//   - natsjs: channels on an embedded single JetStream node, file store;
//   - tcp: the main module's TCP stream endpoint on loopback;
//   - nats-core: plain nats.go publish/subscribe (no JetStream) on the same
//     kind of embedded server.
//
// at 64 B and 4 KiB values.
const (
	envBenchRole  = "NATSBENCH_ROLE"  // "<case>/<rtt|oneway>"
	envBenchN     = "NATSBENCH_N"     // values
	envBenchAddr  = "NATSBENCH_ADDR"  // the server's URL, or the TCP listener's address
	envBenchToken = "NATSBENCH_TOKEN" // the server's token
	envBenchName  = "NATSBENCH_NAME"  // the channel or subject prefix
)

func init() {
	role, ok := os.LookupEnv(envBenchRole)
	if !ok {
		return
	}
	if err := benchChild(role); err != nil {
		fmt.Fprintln(os.Stderr, "bench child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func benchChild(role string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n := atoi(os.Getenv(envBenchN))
	addr, name := os.Getenv(envBenchAddr), os.Getenv(envBenchName)
	ready := func() { os.Stdout.WriteString("ready\n") }
	switch role {
	case "natsjs/rtt", "natsjs/oneway":
		c, err := natsjs.Connect(ctx, natsjs.WithURL(addr), natsjs.WithNATSOptions(nats.Token(os.Getenv(envBenchToken))))
		if err != nil {
			return err
		}
		defer c.Close()
		rx, err := natsjs.NewReceiver[[]byte](ctx, c, name+"-req", natsjs.ChannelConfig{}, natsjs.ReceiverConfig{})
		if err != nil {
			return err
		}
		defer rx.Close()
		var tx interface {
			Send(context.Context, []byte) error
			Close() error
		}
		if role == "natsjs/rtt" {
			if tx, err = natsjs.NewSender[[]byte](ctx, c, name+"-rep", natsjs.ChannelConfig{}); err != nil {
				return err
			}
			defer tx.Close()
		}
		ready()
		for range n {
			v, err := rx.Recv(ctx)
			if err != nil {
				return err
			}
			if tx != nil {
				if err := tx.Send(ctx, v); err != nil {
					return err
				}
			}
		}
	case "tcp/rtt", "tcp/oneway":
		conn, err := endpoints.Dial[[]byte, []byte](ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		ready()
		for range n {
			v, err := conn.Receiver().Recv(ctx)
			if err != nil {
				return err
			}
			if role == "tcp/rtt" {
				if err := conn.Sender().Send(ctx, v); err != nil {
					return err
				}
			}
		}
		if err := conn.Sender().Flush(ctx); err != nil {
			return err
		}
	case "nats-core/rtt", "nats-core/oneway":
		nc, err := nats.Connect(addr, nats.Token(os.Getenv(envBenchToken)))
		if err != nil {
			return err
		}
		defer nc.Close()
		got := make(chan struct{})
		count := 0
		sub, err := nc.Subscribe(name+".req", func(m *nats.Msg) {
			if role == "nats-core/rtt" {
				m.Respond(m.Data)
			}
			if count++; count == n {
				close(got)
			}
		})
		if err != nil {
			return err
		}
		sub.SetPendingLimits(-1, -1) // hold every value: none dropped as a slow consumer's
		if err := nc.Flush(); err != nil {
			return err
		}
		ready()
		if n > 0 {
			select {
			case <-got:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		sub.Unsubscribe()
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	os.Stdout.WriteString("done\n")
	return nil
}

// benchPeer starts the child and waits for its "ready".
type benchPeer struct {
	cmd   *exec.Cmd
	lines *bufio.Scanner
}

func startBenchPeer(b *testing.B, env ...string) *benchPeer {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &benchPeer{cmd: cmd, lines: bufio.NewScanner(out)}
	p.expect(b, "ready")
	return p
}

func (p *benchPeer) expect(b *testing.B, line string) {
	b.Helper()
	if !p.lines.Scan() || p.lines.Text() != line {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		b.Fatalf("peer: got %q, want %q", p.lines.Text(), line)
	}
}

func (p *benchPeer) wait(b *testing.B) {
	b.Helper()
	for p.lines.Scan() {
	}
	if err := p.cmd.Wait(); err != nil {
		b.Fatalf("peer: %v", err)
	}
}

var benchSizes = []struct {
	name string
	size int
}{{"64B", 64}, {"4KiB", 4 << 10}}

func BenchmarkRoundTrip(b *testing.B) { benchCases(b, "rtt") }
func BenchmarkOneWay(b *testing.B)    { benchCases(b, "oneway") }

func benchCases(b *testing.B, kind string) {
	for _, sz := range benchSizes {
		b.Run("natsjs/"+sz.name, func(b *testing.B) { benchNatsjs(b, kind, sz.size) })
		b.Run("tcp/"+sz.name, func(b *testing.B) { benchTCP(b, kind, sz.size) })
		b.Run("nats-core/"+sz.name, func(b *testing.B) { benchCore(b, kind, sz.size) })
	}
}

// benchServer runs an embedded single node with a file store and a token.
func benchServer(b *testing.B) (*natsjs.Conn, string) {
	b.Helper()
	o := soloNode("bench", b.TempDir())
	o.Authorization = nuid.Next()
	c, err := natsjs.Connect(context.Background(), natsjs.WithServerOptions(o))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, o.Authorization
}

func benchEnv(kind, cs, addr, token, name string, n int) []string {
	return []string{envBenchRole + "=" + cs + "/" + kind, envBenchN + "=" + strconv.Itoa(n),
		envBenchAddr + "=" + addr, envBenchToken + "=" + token, envBenchName + "=" + name}
}

func benchNatsjs(b *testing.B, kind string, size int) {
	ctx := context.Background()
	c, token := benchServer(b)
	name := "bench-" + nuid.Next()
	tx, err := natsjs.NewSender[[]byte](ctx, c, name+"-req", natsjs.ChannelConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var rx interface {
		Recv(context.Context) ([]byte, error)
		Close() error
	}
	if kind == "rtt" {
		if rx, err = natsjs.NewReceiver[[]byte](ctx, c, name+"-rep", natsjs.ChannelConfig{}, natsjs.ReceiverConfig{}); err != nil {
			b.Fatal(err)
		}
		defer rx.Close()
	}
	p := startBenchPeer(b, benchEnv(kind, "natsjs", c.Server().ClientURL(), token, name, b.N)...)
	v := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := tx.Send(ctx, v); err != nil {
			b.Fatal(err)
		}
		if rx != nil {
			if _, err := rx.Recv(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	p.expect(b, "done")
	b.StopTimer()
	p.wait(b)
	tx.Close()
}

func benchTCP(b *testing.B, kind string, size int) {
	ctx := context.Background()
	l, err := endpoints.Listen[[]byte, []byte](ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	p := startBenchPeer(b, benchEnv(kind, "tcp", l.Addr(), "", "", b.N)...)
	conn, err := l.Accept(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	v := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := conn.Sender().Send(ctx, v); err != nil {
			b.Fatal(err)
		}
		if kind == "rtt" {
			if _, err := conn.Receiver().Recv(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := conn.Sender().Flush(ctx); err != nil {
		b.Fatal(err)
	}
	p.expect(b, "done")
	b.StopTimer()
	p.wait(b)
}

func benchCore(b *testing.B, kind string, size int) {
	c, token := benchServer(b)
	nc := c.NATS()
	subj := "bench-" + nuid.Next()
	p := startBenchPeer(b, benchEnv(kind, "nats-core", c.Server().ClientURL(), token, subj, b.N)...)
	v := make([]byte, size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if kind == "rtt" {
			if _, err := nc.Request(subj+".req", v, 10*time.Second); err != nil {
				b.Fatal(err)
			}
		} else if err := nc.Publish(subj+".req", v); err != nil {
			b.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	p.expect(b, "done")
	b.StopTimer()
	p.wait(b)
}
