package endpoints_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// envChild names the helper role a re-executed test binary plays (see
// childMain); the conformance suite's own children use ipcchantest.Child.
const envChild = "ENDPOINTS_TEST_CHILD"

var childRoles = map[string]func() error{}

// childMain runs this process as a helper if the tests started it as one.
func childMain() {
	role, ok := os.LookupEnv(envChild)
	if !ok {
		return
	}
	f := childRoles[role]
	if f == nil {
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", envChild, role)
		os.Exit(2)
	}
	if err := f(); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// helperCmd returns a command that re-executes the test binary as role.
func helperCmd(tb testing.TB, role string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"="+role), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// helperProc is a running helper process.
type helperProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// wait waits for the helper to exit and returns its status.
func (p *helperProc) wait() error {
	<-p.done
	return p.err
}

// startHelper starts role with the ends handed over, and makes sure it is
// gone when tb ends.
func startHelper(tb testing.TB, role string, env []string, ends ...endpoints.Handed) *helperProc {
	tb.Helper()
	cmd := helperCmd(tb, role, env...)
	if err := endpoints.Start(cmd, ends...); err != nil {
		tb.Fatal(err)
	}
	p := &helperProc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	tb.Cleanup(func() {
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func init() {
	// echo sends back every []byte it receives, until end of stream.
	childRoles["echo"] = func() error {
		rx, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		var opts []ipcchan.Option
		if os.Getenv(envEchoLarge) == "1" {
			opts = ipcchanNoAtomic // frames over PIPE_BUF on a pipe
		}
		tx, err := endpoints.InheritSender[[]byte]("out", opts...)
		if err != nil {
			return err
		}
		defer tx.Close()
		ctx := context.Background()
		var buf []byte
		for {
			if err := rx.RecvInto(ctx, &buf); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			if err := tx.Send(ctx, buf); err != nil {
				return err
			}
		}
	}
}

var ipcchanNoAtomic = []ipcchan.Option{ipcchan.WithAtomicWrites(false)}

// envEchoLarge tells the echo role that its "out" end is a pipe that
// carries frames larger than PIPE_BUF (atomic writes off: the option is
// refused on any other kind of end).
const envEchoLarge = "IPCCHAN_TEST_ECHO_LARGE"

func init() {
	// sink receives until end of stream, then sends one ack.
	childRoles["sink"] = func() error {
		rx, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		ack, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			return err
		}
		defer ack.Close()
		ctx := context.Background()
		var buf []byte
		n := 0
		for {
			err := rx.RecvInto(ctx, &buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			n++
		}
		return ack.Send(ctx, []byte(strconv.Itoa(n)))
	}
	// raw-echo reads messages of IPCCHAN_SIZE bytes from fd 3 and writes each
	// back to fd 4, with plain os.File reads and writes.
	childRoles["raw-echo"] = func() error {
		in, out := os.NewFile(3, "in"), os.NewFile(4, "out")
		size, _ := strconv.Atoi(os.Getenv("IPCCHAN_SIZE"))
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(in, buf); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			if _, err := out.Write(buf); err != nil {
				return err
			}
		}
	}
	// raw-sink reads fd 3 until end of file, then writes the byte count to fd 4.
	childRoles["raw-sink"] = func() error {
		in, out := os.NewFile(3, "in"), os.NewFile(4, "out")
		buf := make([]byte, 64<<10)
		total := 0
		for {
			n, err := in.Read(buf)
			total += n
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(out, "%d", total)
		return err
	}
}
