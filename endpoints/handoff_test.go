package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

func TestInheritErrorsAreClear(t *testing.T) {
	tests := []struct {
		env, name, want string
	}{
		{"", "jobs", "IPCCHAN_FILES is not set"},
		{"jobs", "jobs", "malformed entry"},
		{"jobs=x", "jobs", "malformed entry"},
		{"jobs=1", "jobs", "fd >= 3"},
		{"jobs=3,jobs=4", "jobs", "appears twice"},
		{"results=7", "jobs", "not among the handed-down endpoints [results]"},
		{"jobs=987", "jobs", "descriptor 987: bad file descriptor"},
	}
	for _, tt := range tests {
		if tt.env == "" {
			os.Unsetenv(endpoints.EnvFiles)
		} else {
			t.Setenv(endpoints.EnvFiles, tt.env)
		}
		_, err := endpoints.InheritReceiver[string](tt.name)
		if !errors.Is(err, endpoints.ErrNotInherited) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s=%q: %v, want an error saying %q", endpoints.EnvFiles, tt.env, err, tt.want)
		}
	}
}

func TestInheritChecksDirection(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// Make the descriptors look inherited.
	t.Setenv(endpoints.EnvFiles, "in="+itoaFD(r)+",out="+itoaFD(w))
	if _, err := endpoints.InheritSender[string]("in"); err == nil || !strings.Contains(err.Error(), "reading only") {
		t.Errorf("InheritSender on a read end: %v", err)
	}
	if _, err := endpoints.InheritReceiver[string]("out"); err == nil || !strings.Contains(err.Error(), "writing only") {
		t.Errorf("InheritReceiver on a write end: %v", err)
	}
}

func itoaFD(f *os.File) string {
	var n int
	rc, _ := f.SyscallConn()
	rc.Control(func(fd uintptr) { n = int(fd) })
	return strconv.Itoa(n)
}

func TestAttachRefusesBadNamesAndKeepsEndsOnError(t *testing.T) {
	tx, rx, err := endpoints.PipePair[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	cmd := exec.Command("true")
	if _, err := endpoints.Attach(cmd, endpoints.Pass("bad name", rx)); err == nil {
		t.Fatal("Attach accepted a name with a space")
	}
	if _, err := endpoints.Attach(cmd, endpoints.Pass("a", rx), endpoints.Pass("a", tx)); err == nil {
		t.Fatal("Attach accepted a name twice")
	}
	if len(cmd.ExtraFiles) != 0 || cmd.Env != nil {
		t.Fatal("a failed Attach changed the command")
	}
	// The ends are still usable.
	if err := tx.Send(context.Background(), "still open"); err != nil {
		t.Fatal(err)
	}
	if v, err := rx.Recv(context.Background()); err != nil || v != "still open" {
		t.Fatalf("Recv = %q, %v", v, err)
	}
}

func TestStartHandsEndsToAChild(t *testing.T) {
	jobsTx, jobsRx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer jobsTx.Close()
	outTx, outRx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer outRx.Close()
	p := startHelper(t, "echo", nil, endpoints.Pass("in", jobsRx), endpoints.Pass("out", outTx))
	if !strings.Contains(strings.Join(p.cmd.Env, "\n"), endpoints.EnvFiles+"=in=3,out=4") {
		t.Fatalf("environment lacks %s=in=3,out=4", endpoints.EnvFiles)
	}
	// The moved ends are closed here.
	if _, err := jobsRx.TryRecv(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("passed Receiver still open here: %v", err)
	}
	ctx := context.Background()
	if err := jobsTx.Send(ctx, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if v, err := outRx.Recv(ctx); err != nil || string(v) != "ping" {
		t.Fatalf("echo: %q, %v", v, err)
	}
	jobsTx.Close()
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
}

func init() {
	// relay is a process started with an end named "in" that starts a
	// child of its own the way a nested pool does — cmd.Env taken from
	// its own environment, which holds its own IPCCHAN_FILES — handing it
	// a new end under the same name; the grandchild ("echo") answers on
	// "out", which the relay hands on from its own parent.
	childRoles["relay"] = func() error {
		in, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			return err
		}
		tx, rx, err := endpoints.PipePair[[]byte]()
		if err != nil {
			return err
		}
		defer tx.Close()
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), envChild+"=echo")
		cmd.Stderr = os.Stderr
		release, err := endpoints.Attach(cmd, endpoints.Pass("in", rx))
		if err != nil {
			return err
		}
		// A second Attach on the same command adds to the first.
		release2, err := endpoints.Attach(cmd, endpoints.Pass("out", out))
		if err != nil {
			release()
			return err
		}
		for _, kv := range cmd.Env {
			if v, ok := strings.CutPrefix(kv, endpoints.EnvFiles+"="); ok && v != "in=3,out=4" {
				return fmt.Errorf("the grandchild gets %s=%s, want exactly in=3,out=4", endpoints.EnvFiles, v)
			}
		}
		err = cmd.Start()
		release()
		release2()
		if err != nil {
			return err
		}
		ctx := context.Background()
		for {
			v, err := in.Recv(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if err := tx.Send(ctx, v); err != nil {
				return err
			}
		}
		tx.Close()
		return cmd.Wait()
	}
}

// An endpoint handed on by a process that was itself handed endpoints: its
// own IPCCHAN_FILES, copied into the child's environment with
// os.Environ(), used to be merged in, so a pool started inside a worker
// failed with "endpoint name given twice" and a grandchild could get two
// names for one descriptor. The child's variable describes exactly what it
// was given.
func TestHandOnFromAnInheritingProcess(t *testing.T) {
	ipcchantest.CheckFDs(t)
	inTx, inRx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer inTx.Close()
	outTx, outRx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer outRx.Close()
	p := startHelper(t, "relay", nil, endpoints.Pass("in", inRx), endpoints.Pass("out", outTx))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, m := range []string{"one", "two"} {
		if err := inTx.Send(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if got, err := outRx.Recv(ctx); err != nil || string(got) != m {
			t.Fatalf("through relay and grandchild: %q, %v; want %q", got, err, m)
		}
	}
	inTx.Close()
	if _, err := outRx.Recv(ctx); err != io.EOF {
		t.Fatalf("after the last value: %v, want io.EOF", err)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("relay: %v", err)
	}
}
