package endpoints_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/ipcchan/endpoints"
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
	tx, rx, err := endpoints.Pipe[string]()
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
	jobsTx, jobsRx, err := endpoints.Pipe[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer jobsTx.Close()
	outTx, outRx, err := endpoints.Pipe[[]byte]()
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
