package clients_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// The C peer's messages (c/peers/c_peer.c): message i of n has cLen(i)
// bytes, cPayload(i) of them, and the tag the -tag mode gives.
func cLen(i, n, max int) int {
	switch {
	case i == 0:
		return 0
	case i == n-1:
		return max
	}
	return i * 7919 % (max + 1)
}

func cPayload(i, n, max int) []byte {
	b := make([]byte, cLen(i, n, max))
	for j := range b {
		b[j] = byte(i*131 + j*7)
	}
	return b
}

func cTag(mode string, i int) uint64 {
	switch mode {
	case "seq":
		return uint64(i % 1000)
	case "seq1":
		return uint64(1 + i%5)
	}
	var v uint64
	fmt.Sscan(mode, &v)
	return v
}

// cLine is how c_peer prints a received message, and how the Go side
// writes what it received, to compare.
func cLine(tag uint64, p []byte) string {
	h := fnv.New64a()
	h.Write(p)
	return fmt.Sprintf("%d %d %016x", tag, len(p), h.Sum64())
}

// cWant is what a receiver of n messages of the C peer's pattern prints.
func cWant(n, max int, tagMode string) []string {
	var want []string
	for i := range n {
		want = append(want, cLine(cTag(tagMode, i), cPayload(i, n, max)))
	}
	return want
}

// cPeerRun is a running c_peer (or other C program).
type cPeerRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{}
	cancel context.CancelFunc
}

// startC starts bin with args and the endpoints handed to it, bounded by
// 60 s (killed after: a hang fails the test), reading its output lines.
func startC(t *testing.T, bin string, args []string, ends ...endpoints.Handed) *cPeerRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := endpoints.Start(cmd, ends...); err != nil {
		cancel()
		t.Fatal(err)
	}
	r := &cPeerRun{t: t, cmd: cmd, lines: make(chan string, 1<<16), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(r.done)
		s := bufio.NewScanner(out)
		for s.Scan() {
			r.lines <- s.Text()
		}
		close(r.lines)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		cmd.Wait()
	})
	return r
}

// line waits for the next output line ("" once the output ended).
func (r *cPeerRun) line() string {
	r.t.Helper()
	select {
	case l := <-r.lines:
		return l
	case <-time.After(30 * time.Second):
		r.t.Fatal("the C peer printed nothing for 30 s")
		return ""
	}
}

// wait waits for the program's exit and returns all its output lines not
// read with line, and its exit error.
func (r *cPeerRun) wait() ([]string, error) {
	var got []string
	for l := range r.lines {
		got = append(got, l)
	}
	<-r.done
	return got, r.cmd.Wait()
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *cPeerRun) kill() {
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
	r.cmd.Wait()
}

func checkLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d lines, want %d", what, len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			t.Errorf("%s: line %d is %q, want %q", what, i, got[i], want[i])
			return
		}
	}
	if len(got) > len(want) {
		t.Errorf("%s: extra lines %q", what, got[len(want):])
	} else if len(got) < len(want) {
		t.Errorf("%s: missing lines %q", what, want[len(got):])
	}
}

// goSendPattern sends the C peer's pattern of n messages through send.
func goSendPattern(t *testing.T, n, max int, tagMode string, send func(tag uint64, p []byte) error) {
	t.Helper()
	for i := range n {
		if err := send(cTag(tagMode, i), cPayload(i, n, max)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
}

// goRecvAll receives until the end, each message as a cLine.
func goRecvAll(t *testing.T, ctx context.Context, rx *ipcchan.Receiver[[]byte]) ([]string, error) {
	t.Helper()
	var got []string
	for {
		v, tag, err := rx.RecvTag(ctx)
		if err != nil {
			return got, err
		}
		got = append(got, cLine(uint64(tag), v))
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// streamEnds makes, for one transport, a Go end and the C peer's transport
// argument and handed ends.
type streamCase struct {
	name string
	max  int
	// goToC returns the Go sender and starts the C receiver with args.
	goToC func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func())
	// cToGo starts the C sender with args and returns the Go receiver.
	cToGo func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func())
}

func streamCases() []streamCase {
	socket := func(network string) streamCase {
		listen := func(t *testing.T, ctx context.Context) (*endpoints.Listener[[]byte, []byte], string) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "s")
			}
			l, err := endpoints.Listen[[]byte, []byte](ctx, network, addr)
			if err != nil {
				t.Fatal(err)
			}
			if network == "unix" {
				return l, "unix:" + addr
			}
			return l, "tcp:" + l.Addr()
		}
		accept := func(t *testing.T, ctx context.Context, l *endpoints.Listener[[]byte, []byte]) *endpoints.Conn[[]byte, []byte] {
			c, err := l.Accept(ctx)
			l.Close()
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		return streamCase{name: network, max: 100000,
			goToC: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func()) {
				l, tr := listen(t, ctx)
				r := startC(t, bin, append([]string{"recv", tr}, args...))
				c := accept(t, ctx, l)
				return c.Sender(), r, func() { c.Close() }
			},
			cToGo: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func()) {
				l, tr := listen(t, ctx)
				r := startC(t, bin, append([]string{"send", tr}, args...))
				c := accept(t, ctx, l)
				return c.Receiver(), r, func() { c.Close() }
			}}
	}
	return []streamCase{
		{name: "pipe", max: 100000,
			goToC: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func()) {
				tx, rx, err := endpoints.PipePair[[]byte]()
				if err != nil {
					t.Fatal(err)
				}
				r := startC(t, bin, append([]string{"recv", "stream"}, args...), endpoints.Pass("ch", rx))
				return tx, r, func() { tx.Close() }
			},
			cToGo: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func()) {
				tx, rx, err := endpoints.PipePair[[]byte]()
				if err != nil {
					t.Fatal(err)
				}
				r := startC(t, bin, append([]string{"send", "stream"}, args...), endpoints.Pass("ch", tx))
				return rx, r, func() { rx.Close() }
			}},
		{name: "fifo", max: 4088, // a FIFO may be shared: frames of at most PIPE_BUF
			goToC: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func()) {
				path := filepath.Join(t.TempDir(), "fifo")
				if err := endpoints.CreateFIFO(path); err != nil {
					t.Fatal(err)
				}
				r := startC(t, bin, append([]string{"recv", "fifo:" + path}, args...))
				tx, err := endpoints.OpenFIFOSender[[]byte](ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				return tx, r, func() { tx.Close() }
			},
			cToGo: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func()) {
				path := filepath.Join(t.TempDir(), "fifo")
				if err := endpoints.CreateFIFO(path); err != nil {
					t.Fatal(err)
				}
				r := startC(t, bin, append([]string{"send", "fifo:" + path}, args...))
				rx, err := endpoints.OpenFIFOReceiver[[]byte](ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				return rx, r, func() { rx.Close() }
			}},
		{name: "socketpair", max: 100000,
			goToC: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func()) {
				a, b, err := endpoints.SocketPair[[]byte, []byte]()
				if err != nil {
					t.Fatal(err)
				}
				r := startC(t, bin, append([]string{"recv", "stream"}, args...), endpoints.Pass("ch", b))
				return a.Sender(), r, func() { a.Close() }
			},
			cToGo: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func()) {
				a, b, err := endpoints.SocketPair[[]byte, []byte]()
				if err != nil {
					t.Fatal(err)
				}
				r := startC(t, bin, append([]string{"send", "stream"}, args...), endpoints.Pass("ch", b))
				return a.Receiver(), r, func() { a.Close() }
			}},
		socket("unix"),
		socket("tcp"),
		{name: "unix, C listens", max: 100000,
			goToC: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func()) {
				path := filepath.Join(t.TempDir(), "s")
				r := startC(t, bin, append([]string{"recv", "listen:" + path}, args...))
				c := dialC(t, ctx, r, path)
				return c.Sender(), r, func() { c.Close() }
			},
			cToGo: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func()) {
				path := filepath.Join(t.TempDir(), "s")
				r := startC(t, bin, append([]string{"send", "listen:" + path}, args...))
				c := dialC(t, ctx, r, path)
				return c.Receiver(), r, func() { c.Close() }
			}},
	}
}

// Go senders to C receivers on every byte stream: 300 messages of 0 to
// 100,000 bytes (more than a pipe holds) with their tags, in order, whole,
// then the end of stream.
func TestCStreamGoToC(t *testing.T) {
	bin := cProgram(t, "c_peer")
	for _, tc := range streamCases() {
		t.Run(tc.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			ctx := testCtx(t)
			const n = 300
			tx, r, done := tc.goToC(t, ctx, bin, []string{"-max", fmt.Sprint(tc.max), "-cap", fmt.Sprint(tc.max)})
			goSendPattern(t, n, tc.max, "seq", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
			done()
			got, err := r.wait()
			if err != nil {
				t.Errorf("C receiver: %v", err)
			}
			checkLines(t, "C received", got, append(cWant(n, tc.max, "seq"), "end"))
		})
	}
}

// C senders to Go receivers on every byte stream, the same pattern; the
// Go receiver ends with io.EOF.
func TestCStreamCToGo(t *testing.T) {
	bin := cProgram(t, "c_peer")
	for _, tc := range streamCases() {
		t.Run(tc.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			ctx := testCtx(t)
			const n = 300
			rx, r, done := tc.cToGo(t, ctx, bin, []string{"-n", fmt.Sprint(n), "-max", fmt.Sprint(tc.max), "-tag", "seq"})
			defer done()
			got, err := goRecvAll(t, ctx, rx)
			if err != io.EOF {
				t.Errorf("Go receiver ended with %v, want io.EOF", err)
			}
			checkLines(t, "Go received", got, cWant(n, tc.max, "seq"))
			if out, err := r.wait(); err != nil || strings.Join(out, ",") != "sent" {
				t.Errorf("C sender: %v %q", err, out)
			}
		})
	}
}

// Several C writers share one pipe with IPCCHAN_SHARED: every frame is one
// write of at most PIPE_BUF bytes, so the Go receiver sees each writer's
// frames whole and in its order; a longer message is refused with
// EMSGSIZE before anything is written.
func TestCStreamSharedPipe(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	tx, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	const n, max = 400, 4088
	var runs []*cPeerRun
	for w := range 3 {
		runs = append(runs, startC(t, bin, []string{"send", "stream", "-shared", "-n", fmt.Sprint(n), "-max", fmt.Sprint(max), "-tag", fmt.Sprint(w + 1)}, endpoints.Share("ch", tx)))
	}
	tx.Close()
	want := map[uint32][]string{}
	for w := range 3 {
		want[uint32(w+1)] = cWant(n, max, fmt.Sprint(w+1))
	}
	got := map[uint32][]string{}
	for {
		v, tag, err := rx.RecvTag(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[tag] = append(got[tag], cLine(uint64(tag), v))
	}
	for w := range 3 {
		checkLines(t, fmt.Sprintf("writer %d", w+1), got[uint32(w+1)], want[uint32(w+1)])
		if out, err := runs[w].wait(); err != nil {
			t.Errorf("writer %d: %v %q", w+1, err, out)
		}
	}
	// One byte more than fits PIPE_BUF with its header: refused, not split.
	tx2, rx2, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx2.Close()
	r := startC(t, bin, []string{"send", "stream", "-shared", "-n", "2", "-max", "4089"}, endpoints.Pass("ch", tx2))
	out, err := r.wait()
	if err == nil || len(out) != 1 || out[0] != "error EMSGSIZE 1 4089" {
		t.Errorf("C sender of a 4089-byte shared frame: %v %q, want error EMSGSIZE", err, out)
	}
	got2, err := goRecvAll(t, ctx, rx2)
	if !errors.Is(err, io.EOF) || len(got2) != 1 || got2[0] != cLine(0, nil) {
		t.Errorf("Go received %q, %v: want the first message and a clean end, nothing of the refused one", got2, err)
	}
}

// A C receiver refuses a Go sender of another element type or codec
// (EPROTO, for good), and one with the handshake off (a frame before any
// hello); a Go receiver refuses a C sender of another type with
// ipcchan.ErrHandshake.
func TestCStreamHandshakeRefused(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	t.Run("GoToC", func(t *testing.T) {
		for _, opts := range [][]ipcchan.Option{nil, {ipcchan.WithHandshake(false)}} {
			tx, rx, err := endpoints.PipePair[[]byte](opts...)
			if err != nil {
				t.Fatal(err)
			}
			args := []string{"recv", "stream", "-codec", "string", "-desc", "string"}
			if opts != nil {
				args = []string{"recv", "stream"} // our type, but no hello comes
			}
			r := startC(t, bin, args, endpoints.Pass("ch", rx))
			tx.Send(ctx, []byte("x"))
			tx.Close()
			out, err := r.wait()
			if err == nil || strings.Join(out, ",") != "error EPROTO 0 0" {
				t.Errorf("C receiver (handshake off on the Go side: %v): %v %q, want error EPROTO", opts != nil, err, out)
			}
		}
	})
	t.Run("CToGo", func(t *testing.T) {
		tx, rx, err := endpoints.PipePair[[]byte]()
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		r := startC(t, bin, []string{"send", "stream", "-n", "3", "-codec", "string", "-desc", "string"}, endpoints.Pass("ch", tx))
		_, err = rx.Recv(ctx)
		if !errors.Is(err, ipcchan.ErrHandshake) {
			t.Errorf("Go receiver of a C string sender: %v, want ErrHandshake", err)
		}
		if _, err2 := rx.Recv(ctx); !errors.Is(err2, ipcchan.ErrHandshake) {
			t.Errorf("the refusal does not stick: %v", err2)
		}
		r.wait()
	})
	t.Run("Off", func(t *testing.T) { // both ends off: no hello, and it works
		tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithHandshake(false))
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		r := startC(t, bin, []string{"send", "stream", "-nohs", "-n", "20", "-tag", "seq"}, endpoints.Pass("ch", tx))
		got, err := goRecvAll(t, ctx, rx)
		if err != io.EOF {
			t.Errorf("Go receiver: %v", err)
		}
		checkLines(t, "Go received", got, cWant(20, 1000, "seq"))
		r.wait()
	})
}

// A C sender killed in the middle of a frame: the Go receiver gets every
// whole message and then io.ErrUnexpectedEOF, never a clean end. A C
// receiver killed: the Go sender gets ipcchan.ErrPeerGone, not a hang.
func TestCStreamKilledPeer(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	t.Run("Sender", func(t *testing.T) {
		tx, rx, err := endpoints.PipePair[[]byte]()
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		r := startC(t, bin, []string{"send", "stream", "-n", "100", "-after", "50", "-partial", "-tag", "seq"}, endpoints.Pass("ch", tx))
		if l := r.line(); l != "ready" {
			t.Fatalf("C sender: %q", l)
		}
		var got []string
		for range 50 {
			v, tag, err := rx.RecvTag(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, cLine(uint64(tag), v))
		}
		checkLines(t, "Go received", got, cWant(100, 1000, "seq")[:50])
		r.kill()
		if _, err := rx.Recv(ctx); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("after the C sender died inside a frame: %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("Receiver", func(t *testing.T) {
		tx, rx, err := endpoints.PipePair[[]byte]()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		r := startC(t, bin, []string{"recv", "stream"}, endpoints.Pass("ch", rx))
		if err := tx.Send(ctx, []byte("first")); err != nil {
			t.Fatal(err)
		}
		if l := r.line(); l != cLine(0, []byte("first")) {
			t.Fatalf("C receiver: %q", l)
		}
		r.kill()
		for {
			err := tx.Send(ctx, make([]byte, 4096))
			if err == nil {
				continue
			}
			if !errors.Is(err, ipcchan.ErrPeerGone) {
				t.Errorf("Go sender after the C receiver died: %v, want ErrPeerGone", err)
			}
			break
		}
	})
}

// A Go sender killed: a Go child (this test binary) sends, then writes
// half a frame and is killed; the C receiver gets every whole message and
// then ENODATA (the stream ended inside a frame), never a clean end.
func TestCStreamGoSenderKilled(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	r := startC(t, bin, []string{"recv", "stream"}, endpoints.Pass("ch", rx))
	child := startGoChild(t, "stream-partial", endpoints.Pass("out", tx))
	if l := child.line(); l != "ready" {
		t.Fatalf("Go child: %q", l)
	}
	var got []string
	for range 20 {
		got = append(got, r.line())
	}
	checkLines(t, "C received", got, cWant(100, 1000, "seq")[:20])
	child.kill()
	out, err := r.wait()
	if err == nil || strings.Join(out, ",") != "error ENODATA 0 100" { // the cut frame: tag 0, 100 bytes
		t.Errorf("C receiver after the Go sender died inside a frame: %v %q, want error ENODATA", err, out)
	}
}

// startGoChild runs this test binary as a Go peer (clientsChild) doing
// role with the ends handed to it.
func startGoChild(t *testing.T, role string, ends ...endpoints.Handed) *cPeerRun {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(childEnv, role)
	r := startC(t, exe, []string{"-test.run=^$"}, ends...)
	os.Unsetenv(childEnv)
	return r
}

// childEnv names the role of a Go child process; TestMain hands it to
// clientsChild.
const childEnv = "IPCCHAN_CLIENTS_CHILD"

// clientsChild is a Go peer process of the tests: it runs the role
// IPCCHAN_CLIENTS_CHILD names and returns the exit code.
func clientsChild(role string) int {
	ctx := context.Background()
	switch role {
	case "stream-partial":
		// 20 messages of the C pattern, then half a frame, then wait to be killed.
		tx, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			fmt.Println(err)
			return 1
		}
		for i := range 20 {
			if err := tx.SendTag(ctx, uint32(cTag("seq", i)), cPayload(i, 100, 1000)); err != nil {
				fmt.Println(err)
				return 1
			}
		}
		if err := tx.Flush(ctx); err != nil { // the messages in the kernel before the raw bytes
			fmt.Println(err)
			return 1
		}
		f, err := tx.File()
		if err != nil {
			fmt.Println(err)
			return 1
		}
		f.Write([]byte{0, 0, 0, 100, 0, 0, 0, 0, 1, 2, 3})
		fmt.Println("ready")
		select {}
	case "queue-stop":
		// 5 messages on the inherited queue or socket, then wait to be killed.
		tx, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			fmt.Println(err)
			return 1
		}
		for i := range 5 {
			if err := tx.SendTag(ctx, 1, cPayload(i, 100, 1000)); err != nil {
				fmt.Println(err)
				return 1
			}
		}
		fmt.Println("ready")
		select {}
	}
	fmt.Println("unknown role", role)
	return 2
}

// On a Unix stream socket, tags from 0x80000000 up mark frames that carry
// descriptors (PROTOCOL.md §5): a Go SendFiles reaches the C receiver, which
// takes no descriptors, as its value alone (the kernel closes the file);
// a C sender refuses such tags there with EINVAL, while on a pipe they are
// tags like any other.
func TestCStreamDescriptorFrames(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	a, b, err := endpoints.SocketPair[[]byte, []byte]()
	if err != nil {
		t.Fatal(err)
	}
	r := startC(t, bin, []string{"recv", "stream"}, endpoints.Pass("ch", b))
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Sender().SendFiles(ctx, []byte("with a file"), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := a.Sender().SendTag(ctx, 0x7ffffffe, []byte("plain")); err != nil {
		t.Fatal(err)
	}
	a.Close()
	got, err := r.wait()
	if err != nil {
		t.Errorf("C receiver: %v", err)
	}
	checkLines(t, "C received", got, []string{cLine(0, []byte("with a file")), cLine(0x7ffffffe, []byte("plain")), "end"})

	a, b, err = endpoints.SocketPair[[]byte, []byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	out, err := startC(t, bin, []string{"send", "stream", "-n", "1", "-tag", "2147483649"}, endpoints.Pass("ch", b)).wait()
	if err == nil || strings.Join(out, ",") != "error EINVAL 0 0" {
		t.Errorf("C sender of tag 0x80000001 on a Unix socket: %v %q, want error EINVAL", err, out)
	}

	tx, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	startC(t, bin, []string{"send", "stream", "-n", "1", "-tag", "2147483649"}, endpoints.Pass("ch", tx))
	got, err = goRecvAll(t, ctx, rx)
	if err != io.EOF {
		t.Errorf("Go receiver: %v", err)
	}
	checkLines(t, "Go received on a pipe", got, []string{cLine(0x80000001, nil)})
}

// dialC dials the Unix socket a C peer listens on, once it says so.
func dialC(t *testing.T, ctx context.Context, r *cPeerRun, path string) *endpoints.Conn[[]byte, []byte] {
	t.Helper()
	if l := r.line(); l != "listening" {
		t.Fatalf("C peer: %q", l)
	}
	c, err := endpoints.Dial[[]byte, []byte](ctx, "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Messages of exactly the receivers' default limit (16 MiB) go both ways;
// one byte more is refused by the receiver (Go: ErrFrameTooLarge; C:
// EMSGSIZE), skipped, and the stream goes on to its end.
func TestCStreamLimit(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	const limit = 16 << 20
	for _, max := range []int{limit, limit + 1} {
		t.Run(fmt.Sprint(max), func(t *testing.T) {
			want := cWant(3, max, "seq")
			wantC := append(want[:2:2], "error EMSGSIZE 2 16777217", "end")
			if max == limit {
				wantC = append(want[:3:3], "end")
			}
			tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithMaxMessageSize(2 * limit))
			if err != nil {
				t.Fatal(err)
			}
			r := startC(t, bin, []string{"recv", "stream", "-cap", fmt.Sprint(2 * limit)}, endpoints.Pass("ch", rx))
			goSendPattern(t, 3, max, "seq", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
			tx.Close()
			got, _ := r.wait()
			checkLines(t, "C received", got, wantC)

			tx, rx2, err := endpoints.PipePair[[]byte]()
			if err != nil {
				t.Fatal(err)
			}
			defer rx2.Close()
			startC(t, bin, []string{"send", "stream", "-n", "3", "-max", fmt.Sprint(max), "-tag", "seq"}, endpoints.Pass("ch", tx))
			got, err = goRecvAll(t, ctx, rx2)
			if max > limit {
				if !errors.Is(err, ipcchan.ErrFrameTooLarge) {
					t.Errorf("Go receiver of a frame over its limit: %v, want ErrFrameTooLarge", err)
				}
				var more []string
				more, err = goRecvAll(t, ctx, rx2)
				got = append(got, more...)
				want = want[:2]
			}
			if err != io.EOF {
				t.Errorf("Go receiver: %v, want io.EOF", err)
			}
			checkLines(t, "Go received", got, want)
		})
	}
}
