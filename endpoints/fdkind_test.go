package endpoints_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

// socketFiles returns the two ends of a Unix socket pair of type typ as
// os.Files.
func socketFiles(t *testing.T, typ int) (*os.File, *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// FileSender and FileReceiver make the endpoint the descriptor really is. A
// Unix stream socket handed to FileSender was taken for a pipe: SendFiles
// failed with "only Unix sockets carry files", a tag with the files bit
// went out and was misread by the peer, and the pipe's ioctl was used on a
// socket.
func TestFileEndpointsFollowTheDescriptor(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("unix stream", func(t *testing.T) {
		a, b := socketFiles(t, unix.SOCK_STREAM)
		tx, err := endpoints.FileSender[string](a)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := endpoints.FileReceiver[string](b, ipcchan.WithRecvFiles(transport.DefaultRecvFiles))
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		b.Close()
		defer rx.Close()
		if err := tx.SendTag(ctx, 1<<31, "flag"); !errors.Is(err, endpoints.ErrReservedTag) {
			t.Errorf("a tag with the files bit = %v, want ErrReservedTag", err)
		}
		f, err := os.Open(os.Args[0])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := tx.SendFiles(ctx, "with a file", f); err != nil {
			t.Fatalf("SendFiles over a Unix stream socket from FileSender: %v", err)
		}
		tx.Close()
		v, files, err := rx.RecvFiles(ctx)
		if err != nil || v != "with a file" || len(files) != 1 {
			t.Fatalf("RecvFiles = %q, %d files, %v", v, len(files), err)
		}
		files[0].Close()
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("after the last value: %v, want io.EOF", err)
		}
	})

	t.Run("unix datagram", func(t *testing.T) {
		a, b := socketFiles(t, unix.SOCK_DGRAM)
		tx, err := endpoints.FileSender[[]byte](a)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := endpoints.FileReceiver[[]byte](b)
		if err != nil {
			t.Fatal(err)
		}
		a.Close()
		b.Close()
		defer rx.Close()
		defer tx.Close()
		// Two values, each one datagram: boundaries kept, not a byte stream.
		for _, v := range []string{"one", "two"} {
			if err := tx.Send(ctx, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"one", "two"} {
			if got, err := rx.Recv(ctx); err != nil || string(got) != want {
				t.Fatalf("Recv = %q, %v; want %q", got, err, want)
			}
		}
	})

	t.Run("wrong direction", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		if _, err := endpoints.FileReceiver[[]byte](w); err == nil || !strings.Contains(err.Error(), "writing only") {
			t.Errorf("FileReceiver on a pipe's write end = %v, want a refusal", err)
		}
		if _, err := endpoints.FileSender[[]byte](r); err == nil || !strings.Contains(err.Error(), "reading only") {
			t.Errorf("FileSender on a pipe's read end = %v, want a refusal", err)
		}
		reg, err := os.Create(filepath.Join(t.TempDir(), "regular"))
		if err != nil {
			t.Fatal(err)
		}
		defer reg.Close()
		if _, err := endpoints.FileReceiver[[]byte](reg); err == nil || !strings.Contains(err.Error(), "regular file") {
			t.Errorf("FileReceiver on a regular file = %v, want a refusal naming it", err)
		}
	})
}

// A POSIX queue receive error is reported as a receive, once: it read
// "recv posix mq posix mq /x: send: bad file descriptor".
func TestQueueErrorsNameTheirDirection(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := endpoints.ObjectName("direction")
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 2, MsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	defer endpoints.RemoveMQ(name)
	tx, err := endpoints.OpenMQSender[[]byte](name)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	f, err := tx.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A sending end is refused as a receiver, by name.
	_, err = endpoints.FileReceiver[[]byte](f)
	if err == nil || !strings.Contains(err.Error(), "writing only") || strings.Count(err.Error(), "posix mq") > 1 {
		t.Fatalf("FileReceiver on a queue's sending end = %v", err)
	}
}
