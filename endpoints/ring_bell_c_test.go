package endpoints_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// These tests drive testdata/ringbell.c, a peer written from PROTOCOL.md
// §8 and §9 alone, over a ring RingPair made: the C program gets its end
// through IPCCHAN_FILES (name=M+R+W), sleeps on its bell with poll(2) and
// rings the Go side's.

// ringbellCmd starts testdata/ringbell.c with args and the ends handed
// over; it returns its stdin and stdout, and makes sure it is gone when t
// ends.
func ringbellCmd(t *testing.T, end endpoints.Handed, args ...string) (*exec.Cmd, io.WriteCloser, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(cPeer(t, "ringbell"), args...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := endpoints.Start(cmd, end); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	return cmd, in, bufio.NewScanner(out)
}

// scanLine reads the C program's next line and checks it.
func scanLine(t *testing.T, sc *bufio.Scanner, want string) {
	t.Helper()
	if !sc.Scan() || sc.Text() != want {
		t.Fatalf("the C reader's line: %q (%v); want %q", sc.Text(), sc.Err(), want)
	}
}

// A C reader sleeping on its bell (poll(2) on the eventfd, rwait set)
// wakes when the Go sender sends; when the C reader frees room, it rings
// the writers' bell and a Go Send parked on the full ring wakes; many
// messages then flow, wrapping around the ring, to the end of stream.
func TestRingBellCReader(t *testing.T) {
	cPeer(t, "ringbell") // first: a skip (no C compiler for GOARCH) leaves nothing open
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[string](256+4096, ipcchan.WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	readerParked, release := ringWord(t, tx, ringRWait)
	defer release()
	writerParked, release2 := ringWord(t, tx, ringWWait)
	defer release2()
	cmd, in, out := ringbellCmd(t, endpoints.Pass("in", rx), "read", "in")
	ctx := testCtx(t)

	for i := range 3 {
		awaitCond(t, "the C reader to sleep on its bell", readerParked)
		v := "k" + strconv.Itoa(i)
		if err := tx.Send(ctx, v); err != nil {
			t.Fatal(err)
		}
		scanLine(t, out, v)
	}

	if err := tx.Send(ctx, "pause"); err != nil {
		t.Fatal(err)
	}
	scanLine(t, out, "pause")
	scanLine(t, out, "paused")
	n := fillRing(t, tx)
	done := make(chan error, 1)
	go func() { done <- tx.Send(ctx, "after") }()
	awaitCond(t, "the Go Send to park on the full ring", writerParked)
	fmt.Fprintln(in, "go")
	if err := <-done; err != nil {
		t.Fatalf("the parked Send: %v", err)
	}
	for i := range n {
		scanLine(t, out, strconv.Itoa(i))
	}
	scanLine(t, out, "after")

	const many = 5000
	errs := make(chan error, 1)
	go func() {
		for i := range many {
			if err := tx.Send(ctx, "m"+strconv.Itoa(i)); err != nil {
				errs <- err
				return
			}
		}
		errs <- tx.Close()
	}()
	for i := range many {
		scanLine(t, out, "m"+strconv.Itoa(i))
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if out.Scan() {
		t.Fatalf("the C reader printed %q after the end of stream", out.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the C reader: %v", err)
	}
}

// A Go receiver parked on its bell (rwait set, no thread) wakes when the
// C writer writes and rings the reader's bell; a C writer sleeping on the
// writers' bell of a full ring wakes when the Go receiver frees room; many
// messages, wrapping around, then the C writer's end of stream.
func TestRingBellCWriter(t *testing.T) {
	cPeer(t, "ringbell") // first: a skip (no C compiler for GOARCH) leaves nothing open
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[string](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	readerParked, release := ringWord(t, rx, ringRWait)
	defer release()
	writerParked, release2 := ringWord(t, rx, ringWWait)
	defer release2()
	const k, many = 3, 5000
	cmd, in, _ := ringbellCmd(t, endpoints.Pass("out", tx), "write", "out", strconv.Itoa(k), strconv.Itoa(many))
	ctx := testCtx(t)

	for i := range k {
		got := make(chan string, 1)
		go func() {
			v, err := rx.Recv(ctx)
			if err != nil {
				v = err.Error()
			}
			got <- v
		}()
		awaitCond(t, "the Go receiver to park on its bell", readerParked)
		fmt.Fprintln(in, "go")
		if v, want := <-got, "k"+strconv.Itoa(i); v != want {
			t.Fatalf("Recv = %q; want %q", v, want)
		}
	}

	awaitCond(t, "the C writer to sleep on the writers' bell", writerParked)
	for i := range many {
		v, err := rx.Recv(ctx)
		if err != nil || v != "m"+strconv.Itoa(i) {
			t.Fatalf("Recv = %q, %v; want %q", v, err, "m"+strconv.Itoa(i))
		}
	}
	if v, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv after the C writer's end of stream = %q, %v; want io.EOF", v, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the C writer: %v", err)
	}
}
