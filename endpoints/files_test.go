package endpoints_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipcchan/ipcchan/endpoints"
	"github.com/ipcchan/ipcchan/ipcchan"
	"github.com/ipcchan/ipcchan/ipcchan/ipcchantest"
)

func TestSendFilesInProcess(t *testing.T) {
	ipcchantest.CheckFDs(t)
	a, b, err := endpoints.Socketpair[string, string]()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "data")
	os.WriteFile(path, []byte("contents"), 0o600)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	// A plain message, one with a file, a plain one: the file stays with
	// its message.
	a.Send(ctx, "before")
	if err := a.Sender().SendFiles(ctx, "with file", f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	a.Send(ctx, "after")

	if v, files, err := b.Receiver().RecvFiles(ctx); err != nil || v != "before" || len(files) != 0 {
		t.Fatalf("first: %q, %d files, %v", v, len(files), err)
	}
	v, files, err := b.Receiver().RecvFiles(ctx)
	if err != nil || v != "with file" || len(files) != 1 {
		t.Fatalf("second: %q, %d files, %v", v, len(files), err)
	}
	buf := make([]byte, 8)
	if n, _ := files[0].Read(buf); string(buf[:n]) != "contents" {
		t.Fatalf("received file reads %q", buf[:n])
	}
	files[0].Close()
	if v, err := b.Recv(ctx); err != nil || v != "after" {
		t.Fatalf("third: %q, %v", v, err)
	}
}

func TestFilesOfAPlainRecvAreClosed(t *testing.T) {
	ipcchantest.CheckFDs(t) // fails the test if the descriptors leak
	a, b, err := endpoints.Socketpair[string, string]()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	if err := a.Sender().SendFiles(ctx, "x", r, w); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Recv(ctx); err != nil || v != "x" {
		t.Fatalf("Recv = %q, %v", v, err)
	}
}

func TestSendFilesRefusals(t *testing.T) {
	a, b, err := endpoints.Socketpair[string, string]()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	ctx := context.Background()
	f, _ := os.Open(os.DevNull)
	defer f.Close()
	many := make([]*os.File, 254)
	for i := range many {
		many[i] = f
	}
	if err := a.Sender().SendFiles(ctx, "x", many...); !errors.Is(err, ipcchan.ErrTooManyFiles) {
		t.Fatalf("254 files: %v, want ErrTooManyFiles", err)
	}
	if err := a.Sender().SendTag(ctx, 1<<31, "x"); !errors.Is(err, endpoints.ErrReservedTag) {
		t.Fatalf("reserved tag: %v", err)
	}
	if _, err := b.Receiver().TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("something was sent: %v", err)
	}
	tx, rx, _ := endpoints.Pipe[string]()
	defer tx.Close()
	defer rx.Close()
	if err := tx.SendFiles(ctx, "x", f); !errors.Is(err, ipcchan.ErrNotSupported) {
		t.Fatalf("SendFiles on a pipe: %v, want ErrNotSupported", err)
	}
	if _, _, err := rx.RecvFiles(ctx); !errors.Is(err, ipcchan.ErrNotSupported) {
		t.Fatalf("RecvFiles on a pipe: %v, want ErrNotSupported", err)
	}
}

func init() {
	// take-receiver gets a pipe's read end from its parent over a socket,
	// reads one job from it, and reports over the socket.
	childRoles["take-receiver"] = func() error {
		c, err := endpoints.InheritConn[string, string]("conn")
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := context.Background()
		what, files, err := c.Receiver().RecvFiles(ctx)
		if err != nil {
			return err
		}
		if len(files) != 1 {
			return errors.New("no file came with " + what)
		}
		jobs, err := endpoints.FileReceiver[string](files[0])
		files[0].Close()
		if err != nil {
			return err
		}
		defer jobs.Close()
		job, err := jobs.Recv(ctx)
		if err != nil {
			return err
		}
		return c.Send(ctx, what+" gave me "+job)
	}
}

// A whole Receiver travels to another process over a Unix socket.
func TestSendReceiverToAChild(t *testing.T) {
	ipcchantest.CheckFDs(t)
	mine, theirs, err := endpoints.Socketpair[string, string]()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	p := startHelper(t, "take-receiver", nil, endpoints.Pass("conn", theirs))
	jobsTx, jobsRx, err := endpoints.Pipe[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer jobsTx.Close()
	ctx := context.Background()
	f, err := jobsRx.File()
	if err != nil {
		t.Fatal(err)
	}
	if err := mine.Sender().SendFiles(ctx, "the jobs pipe", f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	jobsRx.Close()
	jobsTx.Send(ctx, "job 1")
	if got, err := mine.Recv(ctx); err != nil || got != "the jobs pipe gave me job 1" {
		t.Fatalf("child says %q, %v", got, err)
	}
	mine.Close()
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
}
