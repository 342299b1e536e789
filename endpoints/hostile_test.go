package endpoints_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

// Hostile clients, each a separate process, against a listener. A peer is
// held to what it sends, not to what it announces.

func init() {
	childRoles["conn-server"] = connServer
	childRoles["hostile-conns"] = hostileConns
	childRoles["fd-flood"] = fdFlood
}

// connServer listens on IPCCHAN_ADDR and echoes every string on every
// connection. When a line comes on stdin, it lets the connections take in
// what was sent to them and prints its peak resident set.
func connServer() error {
	ctx := context.Background()
	l, err := endpoints.Listen[string, string](ctx, "unix", os.Getenv("IPCCHAN_ADDR"))
	if err != nil {
		return err
	}
	defer l.Close()
	var mu sync.Mutex
	var socks []*os.File  // a duplicate of each connection, to see what it has not read
	var open atomic.Int64 // connections being served
	go func() {
		for {
			c, err := l.Accept(ctx)
			if err != nil {
				return
			}
			if f, err := c.File(); err == nil {
				mu.Lock()
				socks = append(socks, f)
				mu.Unlock()
			}
			open.Add(1)
			go func() {
				defer open.Add(-1)
				defer c.Close()
				for {
					v, err := c.Recv(ctx)
					if err != nil {
						return
					}
					if c.Send(ctx, v) != nil {
						return
					}
				}
			}()
		}
	}()
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	// Wait until the connections have read all they were sent; those
	// waiting for memory leave theirs in the kernel, so the wait is bounded.
	unread := 0
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		unread = 0
		mu.Lock()
		for _, f := range socks {
			if n, err := unreadBytes(f); err == nil && n > 0 {
				unread++
			}
		}
		mu.Unlock()
		if unread == 0 || time.Now().After(deadline) {
			break
		}
	}
	hwm, err := statusKB("VmHWM")
	if err != nil {
		return err
	}
	fmt.Printf("vmhwm %d unread %d open %d\n", hwm, unread, open.Load())
	return nil
}

// unreadBytes returns how many bytes wait in socket f to be read (f.Fd
// would switch the socket, shared with its Conn, to blocking mode).
func unreadBytes(f *os.File) (n int, err error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, err
	}
	if cerr := rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); cerr != nil {
		return 0, cerr
	}
	return n, err
}

// statusKB returns a field of /proc/self/status in kB.
func statusKB(field string) (int, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", field)
}

// helloFrame is the hello a Sender[string] with the default codec sends,
// built from the documented format (see transport.HandshakeTag).
func helloFrame() []byte {
	c, _ := codec.Default[string]()
	p := []byte("IPCCHAN\x00")
	p = binary.BigEndian.AppendUint16(p, 1)
	p = append(p, byte(len(c.Name())))
	p = append(p, c.Name()...)
	p = binary.BigEndian.AppendUint64(p, ipcchan.Fingerprint(reflect.TypeFor[string]()))
	return codec.AppendFrame(nil, transport.HandshakeTag, p)
}

// hostileConns opens IPCCHAN_CONNS connections to IPCCHAN_ADDR, and on each
// sends what IPCCHAN_HOSTILE says, then stalls until stdin ends:
//   - announce: a hello, then a header announcing the largest frame;
//   - prehello: a header announcing the largest frame, before any hello;
//   - partial: a hello, a header announcing the largest frame, and as much
//     of its payload (up to 1 MiB) as the kernel takes.
//
// Memory allocated but never written stays virtual until it is reused, so
// when it sends no payload it first drops and replaces its connections a
// few times, as an attacker would: a server that allocates what is
// announced then reuses, and touches, that memory for the next connections.
func hostileConns() error {
	n, _ := strconv.Atoi(os.Getenv("IPCCHAN_CONNS"))
	variant := os.Getenv("IPCCHAN_HOSTILE")
	var header [codec.HeaderSize]byte
	codec.PutHeader(header[:], codec.DefaultMaxFrameSize, 0)
	var first []byte
	switch variant {
	case "announce", "partial":
		first = append(helloFrame(), header[:]...)
	case "prehello":
		first = header[:]
	default:
		return fmt.Errorf("unknown IPCCHAN_HOSTILE=%q", variant)
	}
	payload := make([]byte, 1<<20)
	sa := &unix.SockaddrUnix{Name: os.Getenv("IPCCHAN_ADDR")}
	fds := make([]int, n)
	rounds := 4
	if variant == "partial" {
		rounds = 1
	}
	for round := range rounds {
		if round > 0 {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
		if err := hostileRound(fds, sa, first, variant == "partial", payload); err != nil {
			return err
		}
	}
	fmt.Println("stalled")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// hostileRound fills fds with connections to sa, each sent first and, if
// partial is set, as much of payload as the kernel takes.
func hostileRound(fds []int, sa unix.Sockaddr, first []byte, partial bool, payload []byte) error {
	for i := range fds {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		fds[i] = fd
		if err := unix.Connect(fd, sa); err != nil {
			return err
		}
		if _, err := unix.Write(fd, first); err != nil {
			return err
		}
		if partial {
			// Room in the kernel for the whole megabyte, where allowed.
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
			unix.SetNonblock(fd, true)
			for sent := 0; sent < len(payload); {
				k, err := unix.Write(fd, payload[sent:])
				if err == unix.EAGAIN {
					break
				}
				if err != nil {
					return err
				}
				sent += k
			}
		}
	}
	return nil
}

// fdFlood connects to IPCCHAN_ADDR and sends four one-byte messages, each
// with 253 descriptors, then stalls until stdin ends.
func fdFlood() error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: os.Getenv("IPCCHAN_ADDR")}); err != nil {
		return err
	}
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	batch := make([]int, 253)
	for i := range batch {
		batch[i] = null
	}
	for range 4 {
		if err := unix.Sendmsg(fd, []byte{0}, unix.UnixRights(batch...), nil, 0); err != nil {
			return err
		}
	}
	fmt.Println("sent")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// child is a helper process talking to the test over its stdin and stdout.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *os.File
	lines *bufio.Reader
}

// startChild starts role, and makes sure it is gone when t ends.
func startChild(t *testing.T, role string, env ...string) *child {
	t.Helper()
	cmd := helperCmd(t, role, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c := &child{cmd: cmd, stdin: stdin, out: r, lines: bufio.NewReader(r)}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		r.Close()
	})
	return c
}

// line returns the child's next line of output, failing t if none comes
// within a minute.
func (c *child) line(t *testing.T) string {
	t.Helper()
	c.out.SetReadDeadline(time.Now().Add(time.Minute))
	s, err := c.lines.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", c.cmd.Env[len(c.cmd.Env)-1], err)
	}
	return strings.TrimSpace(s)
}

// 200 hostile connections, each announcing the largest frame (after a
// hello, before any hello, or with a megabyte of it sent) and stalling,
// keep a server process under 100 MB, and well-behaved clients are served
// meanwhile, a large message too.
func TestHostileConnectionsMemory(t *testing.T) {
	for _, variant := range []string{"announce", "prehello", "partial"} {
		t.Run(variant, func(t *testing.T) {
			addr := filepath.Join(t.TempDir(), "s")
			server := startChild(t, "conn-server", "IPCCHAN_ADDR="+addr)
			if got := server.line(t); got != "ready" {
				t.Fatalf("server says %q", got)
			}
			hostile := startChild(t, "hostile-conns", "IPCCHAN_ADDR="+addr, "IPCCHAN_CONNS=200", "IPCCHAN_HOSTILE="+variant)
			if got := hostile.line(t); got != "stalled" {
				t.Fatalf("hostile client says %q", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			big := strings.Repeat("x", 1<<20)
			for i := range 10 {
				c, err := endpoints.Dial[string, string](ctx, "unix", addr)
				if err != nil {
					t.Fatal(err)
				}
				for j := range 10 {
					msg := fmt.Sprintf("client %d value %d", i, j)
					if i == 0 && j == 0 {
						msg = big
					}
					if err := c.Send(ctx, msg); err != nil {
						t.Fatal(err)
					}
					if got, err := c.Recv(ctx); err != nil || got != msg {
						t.Fatalf("client %d, value %d: echo of %d bytes: %d bytes, %v", i, j, len(msg), len(got), err)
					}
				}
				c.Close()
			}
			fmt.Fprintln(server.stdin, "report")
			var hwm, unread, open int
			if _, err := fmt.Sscanf(server.line(t), "vmhwm %d unread %d open %d", &hwm, &unread, &open); err != nil {
				t.Fatal(err)
			}
			t.Logf("server's peak RSS %.1f MB; %d connections open, %d with bytes unread", float64(hwm)*1024/1e6, open, unread)
			limit := 100.0
			if raceEnabled {
				limit = 400 // the detector's shadow memory multiplies the heap
			}
			if mb := float64(hwm) * 1024 / 1e6; mb > limit {
				t.Errorf("server's peak RSS %.1f MB, want under %.0f MB", mb, limit)
			}
		})
	}
}

// A peer process that sends four one-byte messages with 253 descriptors
// each pins none in a receiver that did not ask for files (the kernel
// closes them), and no more than its bound in one that did.
func TestHostileDescriptorsAreBounded(t *testing.T) {
	for _, tc := range []struct {
		name  string
		opts  []ipcchan.Option
		bound int
	}{
		{"unasked", nil, 0},
		{"WithRecvFiles", []ipcchan.Option{ipcchan.WithRecvFiles(transport.DefaultRecvFiles)}, transport.DefaultRecvFiles},
		{"WithRecvFiles(10)", []ipcchan.Option{ipcchan.WithRecvFiles(10)}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			addr := filepath.Join(t.TempDir(), "s")
			l, err := endpoints.Listen[string, string](ctx, "unix", addr, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			flood := startChild(t, "fd-flood", "IPCCHAN_ADDR="+addr)
			c, err := l.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := flood.line(t); got != "sent" {
				t.Fatalf("flooding client says %q", got)
			}
			sock, err := c.File()
			if err != nil {
				t.Fatal(err)
			}
			defer sock.Close()
			before := len(readDir(t, "/proc/self/fd"))
			// A receive that does not wait reads until the socket is empty.
			if _, err := c.Receiver().TryRecv(); !errors.Is(err, ipcchan.ErrWouldBlock) {
				t.Fatalf("TryRecv = %v, want ErrWouldBlock", err)
			}
			if n, err := unreadBytes(sock); err != nil || n != 0 {
				t.Fatalf("%d bytes left unread (%v)", n, err)
			}
			after := len(readDir(t, "/proc/self/fd"))
			t.Logf("%d descriptors open before the receive, %d after", before, after)
			if after-before > tc.bound+4 {
				t.Errorf("the receive kept %d descriptors, want at most %d", after-before, tc.bound)
			}
		})
	}
}
