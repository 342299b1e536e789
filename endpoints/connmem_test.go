package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// memListener listens on a fresh Unix path with opts.
func memListener(t *testing.T, ctx context.Context, opts ...ipcchan.Option) *endpoints.Listener[string, string] {
	t.Helper()
	l, err := endpoints.Listen[string, string](ctx, "unix", filepath.Join(t.TempDir(), "s"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawClient connects a plain socket to l, with room in the kernel for
// everything the test writes at once; it is closed when t ends.
func rawClient(t *testing.T, l *endpoints.Listener[string, string]) *os.File {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: l.Addr()}); err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "raw client")
	t.Cleanup(func() { f.Close() })
	return f
}

func accept(t *testing.T, ctx context.Context, l *endpoints.Listener[string, string]) *endpoints.Conn[string, string] {
	t.Helper()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A connection that needs more memory than its listener has left waits for
// it: its Recv ends with its context, TryRecv says it would block, Close
// wakes it, and a peer that hangs up short of its frame ends it; once the
// memory is given back, it is served, even if its peer has hung up after
// sending the whole frame.
func TestConnMemoryWaits(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := memListener(t, ctx, ipcchan.WithConnMemory(256<<10))
	frame := func(c byte) (string, []byte) {
		v := strings.Repeat(string(c), 300<<10)
		return v, codec.AppendFrame(helloFrame(), 0, []byte(v))
	}
	cut := len(helloFrame()) + codec.HeaderSize + 200<<10

	// A stalls inside a 300 KiB frame, holding 172 KiB of the 256.
	aWant, aFrame := frame('a')
	a := rawClient(t, l)
	if _, err := a.Write(aFrame[:cut]); err != nil {
		t.Fatal(err)
	}
	ca := accept(t, ctx, l)
	if _, err := ca.Receiver().TryRecv(); !errors.Is(err, ipcchan.ErrWouldBlock) {
		t.Fatalf("A's TryRecv = %v", err)
	}

	// B sends a whole 300 KiB frame and hangs up: it needs what A holds.
	bWant, bFrame := frame('b')
	b := rawClient(t, l)
	if _, err := b.Write(bFrame); err != nil {
		t.Fatal(err)
	}
	b.Close()
	cb := accept(t, ctx, l)
	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	if _, err := cb.Recv(short); err != context.DeadlineExceeded {
		t.Fatalf("B's Recv while A holds the memory: %v, want its context's end", err)
	}
	if _, err := cb.Receiver().TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("B's TryRecv while A holds the memory: %v, want ErrWouldBlock", err)
	}

	// C's peer hangs up without the rest of its frame: C's wait ends.
	_, cFrame := frame('c')
	c := rawClient(t, l)
	if _, err := c.Write(cFrame[:cut]); err != nil {
		t.Fatal(err)
	}
	cc := accept(t, ctx, l)
	cGot := make(chan error, 1)
	go func() { _, err := cc.Recv(ctx); cGot <- err }()
	c.Close()
	if err := <-cGot; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("C's Recv after its peer hung up: %v, want io.ErrUnexpectedEOF", err)
	}

	// D waits too, until it is closed.
	_, dFrame := frame('d')
	d := rawClient(t, l)
	if _, err := d.Write(dFrame); err != nil {
		t.Fatal(err)
	}
	cd := accept(t, ctx, l)
	if _, err := cd.Receiver().TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("D's TryRecv while A holds the memory: %v, want ErrWouldBlock", err)
	}
	dGot := make(chan error, 1)
	go func() { _, err := cd.Recv(ctx); dGot <- err }()
	cd.Close()
	if err := <-dGot; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("D's Recv after Close: %v, want os.ErrClosed", err)
	}

	// A's peer sends the rest: A is served, and gives the memory back to B.
	if _, err := a.Write(aFrame[cut:]); err != nil {
		t.Fatal(err)
	}
	if v, err := ca.Recv(ctx); err != nil || v != aWant {
		t.Fatalf("A's frame: %d bytes, %v", len(v), err)
	}
	if v, err := cb.Recv(ctx); err != nil || v != bWant {
		t.Fatalf("B's frame: %d bytes, %v", len(v), err)
	}
	if _, err := cb.Recv(ctx); err != io.EOF {
		t.Fatalf("B after its frame: %v, want io.EOF", err)
	}
}

// A frame that could never fit in the listener's memory is refused with
// ErrFrameTooLarge, naming the option, and skipped.
func TestConnMemoryRefusesWhatCanNeverFit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := memListener(t, ctx, ipcchan.WithConnMemory(256<<10))
	client, err := endpoints.Dial[string, string](ctx, "unix", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := accept(t, ctx, l)
	go func() {
		client.Send(ctx, strings.Repeat("x", 512<<10))
		client.Send(ctx, "after")
	}()
	_, err = server.Recv(ctx)
	if !errors.Is(err, ipcchan.ErrFrameTooLarge) || !strings.Contains(err.Error(), "WithConnMemory") {
		t.Fatalf("Recv of a frame larger than the listener's memory: %v", err)
	}
	t.Log(err)
	if v, err := server.Recv(ctx); err != nil || v != "after" {
		t.Fatalf("the frame after: %q, %v", v, err)
	}
}

// Connections that each need more than half the memory, sending at once,
// are all served: none is granted memory that would leave the others
// holding part of what they need and waiting for each other for ever.
func TestConnMemoryNeverDeadlocks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := memListener(t, ctx, ipcchan.WithConnMemory(512<<10))
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range n {
		client, err := endpoints.Dial[string, string](ctx, "unix", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server := accept(t, ctx, l)
		msg := strings.Repeat(fmt.Sprint(i), 400<<10)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 3 {
				if err := client.Send(ctx, msg); err != nil {
					errs <- err
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 3 {
				if v, err := server.Recv(ctx); err != nil || v != msg {
					errs <- fmt.Errorf("connection %d: %d bytes, %w", i, len(v), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
