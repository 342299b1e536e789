package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

func TestSendFilesInProcess(t *testing.T) {
	ipcchantest.CheckFDs(t)
	a, b, err := endpoints.SocketPair[string, string](ipcchan.WithRecvFiles(transport.DefaultRecvFiles))
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

// The files of a value read with plain Recv are closed, whether the
// receiver takes files (it closes them) or not (the kernel does).
func TestFilesOfAPlainRecvAreClosed(t *testing.T) {
	for _, opts := range [][]ipcchan.Option{nil, {ipcchan.WithRecvFiles(transport.DefaultRecvFiles)}} {
		ipcchantest.CheckFDs(t) // fails the test if the descriptors leak
		a, b, err := endpoints.SocketPair[string, string](opts...)
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
}

func TestSendFilesRefusals(t *testing.T) {
	a, b, err := endpoints.SocketPair[string, string]()
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
	tx, rx, _ := endpoints.PipePair[string]()
	defer tx.Close()
	defer rx.Close()
	if err := tx.SendFiles(ctx, "x", f); !errors.Is(err, ipcchan.ErrNotSupported) {
		t.Fatalf("SendFiles on a pipe: %v, want ErrNotSupported", err)
	}
	if _, _, err := rx.RecvFiles(ctx); !errors.Is(err, ipcchan.ErrNotSupported) {
		t.Fatalf("RecvFiles on a pipe: %v, want ErrNotSupported", err)
	}
	// A socket receiver that did not ask for files.
	a.Sender().SendFiles(ctx, "x", f)
	if _, _, err := b.Receiver().RecvFiles(ctx); !errors.Is(err, ipcchan.ErrNotSupported) || !strings.Contains(err.Error(), "WithRecvFiles") {
		t.Fatalf("RecvFiles without WithRecvFiles: %v, want ErrNotSupported naming the option", err)
	}
	if v, err := b.Recv(ctx); err != nil || v != "x" {
		t.Fatalf("Recv after the refused RecvFiles: %q, %v", v, err)
	}
}

func init() {
	// take-receiver gets a pipe's read end from its parent over a socket,
	// reads one job from it, and reports over the socket.
	childRoles["take-receiver"] = func() error {
		c, err := endpoints.InheritConn[string, string]("conn", ipcchan.WithRecvFiles(transport.DefaultRecvFiles))
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
	mine, theirs, err := endpoints.SocketPair[string, string]()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	p := startHelper(t, "take-receiver", nil, endpoints.Pass("conn", theirs))
	jobsTx, jobsRx, err := endpoints.PipePair[string]()
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

// A hostile peer that sends descriptors no frame claims cannot fill this
// process's descriptor table: beyond the receiver's bound they are closed
// on arrival, and the frame that then claims more than were kept is
// refused with an error naming the option.
func TestUnclaimedFilesAreBounded(t *testing.T) {
	ipcchantest.CheckFDs(t)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := pair[0]
	defer unix.Close(peer)
	own := os.NewFile(uintptr(pair[1]), "socketpair")
	rx, err := endpoints.FileReceiver[string](own, ipcchan.WithRecvFiles(transport.DefaultRecvFiles))
	own.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(null)
	batch := make([]int, 253)
	for i := range batch {
		batch[i] = null
	}
	before := len(readDir(t, "/proc/self/fd"))
	// Eight one-byte writes, each with 253 descriptors: 2024 in all, and
	// the eight bytes form a frame header announcing files.
	var header [8]byte
	binary.BigEndian.PutUint32(header[0:], 4)
	binary.BigEndian.PutUint32(header[4:], 1<<31)
	for i := range header {
		if err := unix.Sendmsg(peer, header[i:i+1], unix.UnixRights(batch...), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	var count [4]byte
	binary.BigEndian.PutUint32(count[:], 2000)
	unix.Write(peer, count[:])
	_, _, err = rx.RecvFiles(context.Background())
	if !errors.Is(err, ipcchan.ErrDecode) || !strings.Contains(err.Error(), "closed") || !strings.Contains(err.Error(), "WithRecvFiles") {
		t.Fatalf("RecvFiles = %v, want a decode error naming the dropped descriptors", err)
	}
	if after := len(readDir(t, "/proc/self/fd")); after > before {
		t.Fatalf("%d descriptors open before, %d after the refused frame", before, after)
	}
}

func readDir(t *testing.T, dir string) []os.DirEntry {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return ents
}

// A frame's descriptors come with its first byte. A receiver holding part
// of a frame reads no further than that frame's end, so the next frame's
// descriptors stay in the kernel until it is delivered: however fast a
// well-behaved sender goes, the receiver's bound (one message's worth)
// never drops its files.
func TestFilesOfTheNextFrameWait(t *testing.T) {
	ipcchantest.CheckFDs(t)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := pair[0]
	defer unix.Close(peer)
	own := os.NewFile(uintptr(pair[1]), "socketpair")
	rx, err := endpoints.FileReceiver[string](own, ipcchan.WithRecvFiles(transport.DefaultRecvFiles), ipcchan.WithHandshake(false))
	own.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(null)
	rights := make([]int, 253)
	for i := range rights {
		rights[i] = null
	}
	withFiles := func(v string) []byte {
		p := binary.BigEndian.AppendUint32(nil, uint32(len(rights)))
		return codec.AppendFrame(nil, 1<<31, append(p, v...))
	}
	first, second := strings.Repeat("f", 30<<10), "g"
	f, g := withFiles(first), withFiles(second)
	// The receiver takes in the start of the first frame and its files...
	if err := unix.Sendmsg(peer, f[:1000], unix.UnixRights(rights...), nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("TryRecv of part of a frame: %v", err)
	}
	// ...then the rest of it and the whole second frame wait in the kernel.
	if _, err := unix.Write(peer, f[1000:]); err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendmsg(peer, g, unix.UnixRights(rights...), nil, 0); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{first, second} {
		v, got, err := rx.RecvFiles(context.Background())
		for _, g := range got {
			g.Close()
		}
		if err != nil || v != want || len(got) != len(rights) {
			t.Fatalf("%d-byte value: %d bytes, %d files, %v", len(want), len(v), len(got), err)
		}
	}
}
