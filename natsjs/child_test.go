package natsjs_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/natsjs"
)

// The environment of a child process of this package's own tests.
const (
	envRole     = "NATSJS_ROLE"     // the role in childRoles
	envStore    = "NATSJS_STORE"    // the store dir of the shared server
	envChannel  = "NATSJS_CHANNEL"  // the channel
	envMode     = "NATSJS_MODE"     // "workqueue" or "broadcast"
	envConsumer = "NATSJS_CONSUMER" // ReceiverConfig.Name
	envCount    = "NATSJS_COUNT"    // values to send
	envURL      = "NATSJS_URL"      // a server to dial directly
	envMaxMsgs  = "NATSJS_MAXMSGS"  // ChannelConfig.MaxMsgs
)

func childChannel() natsjs.ChannelConfig {
	n, _ := strconv.ParseInt(os.Getenv(envMaxMsgs), 10, 64)
	return natsjs.ChannelConfig{Mode: childMode(), MaxMsgs: n}
}

// childRoles are the parts a re-executed test binary plays.
var childRoles = map[string]func() error{}

// natsChild runs this process as a child of a test if one started it, and
// exits; otherwise it returns at once.
func natsChild() {
	role, ok := os.LookupEnv(envRole)
	if !ok {
		return
	}
	play := childRoles[role]
	if play == nil {
		fmt.Fprintf(os.Stderr, "no child role %q\n", role)
		os.Exit(2)
	}
	if err := play(); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// reportCodec encodes ints in decimal, and reports each value it decodes
// on stdout ("d <value>") from inside the transport's deliver, that is
// before the value is acknowledged: the parent sees every delivery, also
// the one a SIGKILL interrupts before its acknowledgement.
type reportCodec struct{ out io.Writer }

func (reportCodec) Name() string { return "test-decimal" }

func (reportCodec) Append(dst []byte, v int) ([]byte, error) {
	return strconv.AppendInt(dst, int64(v), 10), nil
}

func (c reportCodec) Decode(data []byte, v *int) error {
	n, err := strconv.Atoi(string(data))
	if err != nil {
		return fmt.Errorf("%w: %q", codec.ErrDecode, data)
	}
	*v = n
	if c.out != nil {
		fmt.Fprintf(c.out, "d %d\n", n)
	}
	return nil
}

func childMode() natsjs.Mode {
	if os.Getenv(envMode) == "broadcast" {
		return natsjs.Broadcast
	}
	return natsjs.WorkQueue
}

func childConnect() (*natsjs.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return natsjs.Connect(ctx, natsjs.WithStoreDir(os.Getenv(envStore)))
}

// childAckWait is the AckWait of the test receivers: a value a killed
// receiver held comes again after it.
const childAckWait = time.Second

func init() {
	// recv receives ints until the end of the stream, reporting each
	// delivery ("d <v>"), each receive that failed after its delivery
	// because its acknowledgement was not confirmed ("x"), "ready" once
	// its consumer is made, and "eof" at the end.
	childRoles["recv"] = func() error {
		c, err := childConnect()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := context.Background()
		out := &lockedWriter{w: os.Stdout}
		rx, err := natsjs.NewReceiver[int](ctx, c, os.Getenv(envChannel), childChannel(),
			natsjs.ReceiverConfig{Name: os.Getenv(envConsumer), AckWait: childAckWait}, ipcchan.WithCodec(codec.Codec[int](reportCodec{out: out})))
		if err != nil {
			return err
		}
		defer rx.Close()
		fmt.Fprintln(out, "ready")
		for {
			_, err := rx.Recv(ctx)
			switch {
			case err == io.EOF:
				fmt.Fprintln(out, "eof")
				return nil
			case errors.Is(err, natsjs.ErrAckUnconfirmed):
				fmt.Fprintln(out, "x")
			case err != nil:
				fmt.Fprintf(os.Stderr, "recv: %v\n", err)
			}
		}
	}
	// send sends 0..count-1 and closes.
	childRoles["send"] = func() error {
		c, err := childConnect()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := context.Background()
		tx, err := natsjs.NewSender[int](ctx, c, os.Getenv(envChannel), childChannel(), ipcchan.WithCodec(codec.Codec[int](reportCodec{})))
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(os.Getenv(envCount))
		for i := range n {
			if err := tx.Send(ctx, i); err != nil {
				return fmt.Errorf("send %d: %w", i, err)
			}
		}
		return tx.Close()
	}
	// hold connects, says whether it runs the server ("owner" or
	// "client"), and holds the connection until its stdin closes.
	childRoles["hold"] = func() error {
		c, err := childConnect()
		if err != nil {
			return err
		}
		if c.Server() != nil {
			fmt.Println("owner")
		} else {
			fmt.Println("client")
		}
		io.Copy(io.Discard, os.Stdin)
		return c.Close()
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// proc is a child process of these tests, its stdout read line by line.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string // closed at the child's EOF
	done  chan struct{}
	err   error
}

// startChild starts the test binary as role with env added.
func startChild(t *testing.T, name, role string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envRole+"="+role), env...)
	if os.Getenv("NATSJS_TEST_VERBOSE") != "" {
		cmd.Stderr = os.Stderr
	}
	return runChild(t, name, cmd)
}

func runChild(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	var stderr strings.Builder
	if cmd.Stderr == nil {
		cmd.Stderr = &stderr
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		if p.err != nil && stderr.Len() > 0 {
			p.err = fmt.Errorf("%w: %s", p.err, stderr.String())
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		stdin.Close()
		<-p.done
	})
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// line returns the child's next line, "" at its end; it fails t after
// the suite's bound.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			return ""
		}
		return l
	case <-time.After(90 * time.Second):
		t.Fatalf("%s: no line within 90 s", p.name)
		return ""
	}
}

// wait waits for the child's exit and fails t unless it exited 0.
func (p *proc) wait(t *testing.T) {
	t.Helper()
	for range p.lines {
	}
	<-p.done
	if p.err != nil {
		t.Fatalf("%s: %v", p.name, p.err)
	}
}

// readDeliveries reads a recv child's reports until "eof" (or, with
// stopAfter > 0, until it has reported stopAfter deliveries, leaving the
// rest unread) and returns them; at its end, ended says it saw "eof".
func readDeliveries(t *testing.T, p *proc, ds []Delivery, stopAfter int) (_ []Delivery, ended bool) {
	t.Helper()
	n := 0
	for {
		l := p.line(t)
		switch {
		case l == "":
			return ds, false
		case l == "eof":
			return ds, true
		case l == "ready":
		case l == "x":
			for i := len(ds) - 1; i >= 0; i-- {
				if ds[i].Receiver == p.name {
					ds[i].NotTaken = true
					break
				}
			}
		case strings.HasPrefix(l, "d "):
			v, err := strconv.Atoi(l[2:])
			if err != nil {
				t.Fatalf("%s: bad report %q", p.name, l)
			}
			ds = append(ds, Delivery{Receiver: p.name, Value: v})
			n++
			if stopAfter > 0 && n == stopAfter {
				return ds, false
			}
		default:
			t.Fatalf("%s: unexpected line %q", p.name, l)
		}
	}
}

// waitReady reads a recv child's lines until "ready".
func waitReady(t *testing.T, p *proc) {
	t.Helper()
	if l := p.line(t); l != "ready" {
		t.Fatalf("%s: said %q before ready", p.name, l)
	}
}
