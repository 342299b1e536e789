package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

type request struct {
	Client, Seq int64
}

type reply struct {
	Client, Seq, Square int64
}

// serve answers every request on every connection until ctx ends.
func serve(ctx context.Context, l *endpoints.Listener[reply, request]) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept(ctx)
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer c.Close()
			for req, err := range c.Receiver().All(ctx) {
				if err != nil {
					return
				}
				if c.Send(ctx, reply{req.Client, req.Seq, req.Seq * req.Seq}) != nil {
					return
				}
			}
		})
	}
}

func TestListenerServesManyClients(t *testing.T) {
	for _, tt := range []struct{ network, address string }{
		{"unix", filepath.Join(t.TempDir(), "srv.sock")},
		{"unix", "@ipcchan-test-" + strconv.Itoa(os.Getpid())},
		{"tcp", "127.0.0.1:0"},
		{"tcp6", "[::1]:0"},
	} {
		t.Run(tt.network+" "+tt.address, func(t *testing.T) {
			if tt.network == "tcp6" {
				if probe, err := net.Listen("tcp6", "[::1]:0"); err != nil {
					t.Skipf("no IPv6 loopback here: %v", err)
				} else {
					probe.Close()
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			l, err := endpoints.Listen[reply, request](ctx, tt.network, tt.address)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			served := make(chan error, 1)
			go func() { served <- serve(ctx, l) }()

			const clients, n = 64, 50
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			for id := range int64(clients) {
				wg.Go(func() {
					c, err := endpoints.Dial[request, reply](ctx, tt.network, l.Addr())
					if err != nil {
						errs <- err
						return
					}
					defer c.Close()
					for seq := range int64(n) {
						if err := c.Send(ctx, request{id, seq}); err != nil {
							errs <- err
							return
						}
						r, err := c.Recv(ctx)
						if err != nil || r != (reply{id, seq, seq * seq}) {
							errs <- fmt.Errorf("client %d: reply %+v, %v", id, r, err)
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			cancel()
			if err := <-served; err != context.Canceled {
				t.Errorf("serve ended with %v", err)
			}
		})
	}
}

func TestSocketFileIsPrivateAndRemoved(t *testing.T) {
	old := unix.Umask(0) // a careless umask must not matter
	defer unix.Umask(old)
	path := filepath.Join(t.TempDir(), "srv.sock")
	l, err := endpoints.Listen[string, string](context.Background(), "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(path)
	if err != nil || st.Mode()&fs.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket file: %v, %v; want a socket with mode 0600", st.Mode(), err)
	}
	// A second listener on the same path is refused while the first lives.
	if _, err := endpoints.Listen[string, string](context.Background(), "unix", path); !errors.Is(err, endpoints.ErrAddrInUse) {
		t.Fatalf("second Listen = %v, want ErrAddrInUse", err)
	}
	l.Close()
	for _, p := range []string{path, path + ".lock"} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind after Close: %v", p, err)
		}
	}
	if l2, err := endpoints.Listen[string, string](context.Background(), "unix", path, ipcchan.WithPerm(0o660)); err != nil {
		t.Fatal(err)
	} else {
		if st, _ := os.Lstat(path); st.Mode().Perm() != 0o660 {
			t.Errorf("WithPerm(0660) made %v", st.Mode().Perm())
		}
		l2.Close()
	}
}

func TestStaleSocketIsReclaimedOthersAreNot(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()

	// A socket file whose owner is gone: bound, never listened on, closed.
	stale := filepath.Join(dir, "stale.sock")
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	l, err := endpoints.Listen[string, string](ctx, "unix", stale)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l.Close()

	// A live listener that is not ours.
	live := filepath.Join(dir, "live.sock")
	nl, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	if _, err := endpoints.Listen[string, string](ctx, "unix", live); !errors.Is(err, endpoints.ErrAddrInUse) {
		t.Errorf("Listen over a live socket = %v, want ErrAddrInUse", err)
	}

	// Not a socket at all.
	regular := filepath.Join(dir, "file")
	os.WriteFile(regular, []byte("keep me"), 0o600)
	if _, err := endpoints.Listen[string, string](ctx, "unix", regular); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Listen over a regular file = %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep me" {
		t.Error("the regular file was touched")
	}
	link := filepath.Join(dir, "link")
	os.Symlink(live, link)
	if _, err := endpoints.Listen[string, string](ctx, "unix", link); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Listen over a symlink = %v, want fs.ErrExist", err)
	}
}

func TestPeerCredentialsAndChecks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := "@ipcchan-cred-" + strconv.Itoa(os.Getpid())
	refuseAll := ipcchan.WithPeerCheck(func(c ipcchan.PeerCred) error { return errors.New("nobody") })
	l, err := endpoints.Listen[string, string](ctx, "unix", addr, refuseAll)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := endpoints.Dial[string, string](ctx, "unix", addr, endpoints.SameUser())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cred, ok := c.PeerCred(); !ok || cred.PID != os.Getpid() || cred.UID != os.Getuid() {
		t.Fatalf("PeerCred = %+v, %v", cred, ok)
	}
	// The listener refuses the client and goes on waiting.
	actx, acancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer acancel()
	if _, err := l.Accept(actx); err != context.DeadlineExceeded {
		t.Fatalf("Accept = %v, want it to skip the refused peer and time out", err)
	}
	if l.Refused() != 1 {
		t.Fatalf("Refused = %d, want 1", l.Refused())
	}
	if _, err := c.Recv(ctx); err != io.EOF && !errors.Is(err, ipcchan.ErrPeerGone) {
		t.Fatalf("the refused client reads %v, want the end of its stream", err)
	}
	// A dialler refusing the server.
	l2, err := endpoints.Listen[string, string](ctx, "unix", addr+"-2")
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if _, err := endpoints.Dial[string, string](ctx, "unix", addr+"-2", endpoints.AllowIDs([]int{-5}, nil)); !errors.Is(err, endpoints.ErrPeerRefused) {
		t.Fatalf("Dial with a refusing check = %v, want ErrPeerRefused", err)
	}
}

func TestGarbageClientAffectsOnlyItself(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := endpoints.Listen[reply, request](ctx, "tcp", "127.0.0.1:0", ipcchan.WithMaxMessageSize(1024))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go serve(ctx, l)

	// A hostile client announces a 4 GiB frame, another a torn one.
	for _, junk := range [][]byte{{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 2}, codec.AppendFrame(nil, 0, make([]byte, 100))[:20]} {
		nc, err := net.Dial("tcp", l.Addr())
		if err != nil {
			t.Fatal(err)
		}
		nc.Write(junk)
		nc.Close()
	}
	// A well-behaved client is served as usual.
	c, err := endpoints.Dial[request, reply](ctx, "tcp", l.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(ctx, request{1, 9}); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Recv(ctx); err != nil || r.Square != 81 {
		t.Fatalf("reply %+v, %v", r, err)
	}
}

func init() {
	// conn-echo takes a whole connection from its parent and echoes
	// strings back, upper-cased, until end of stream.
	childRoles["conn-echo"] = func() error {
		c, err := endpoints.InheritConn[string, string]("conn")
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := context.Background()
		for s, err := range c.Receiver().All(ctx) {
			if err != nil {
				return err
			}
			if err := c.Send(ctx, "echo: "+s); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestSocketpairWithAChild(t *testing.T) {
	mine, theirs, err := endpoints.SocketPair[string, string]()
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	p := startHelper(t, "conn-echo", nil, endpoints.Pass("conn", theirs))
	ctx := context.Background()
	for _, s := range []string{"a", "b"} {
		if err := mine.Send(ctx, s); err != nil {
			t.Fatal(err)
		}
		if got, err := mine.Recv(ctx); err != nil || got != "echo: "+s {
			t.Fatalf("got %q, %v", got, err)
		}
	}
	if cred, ok := mine.PeerCred(); !ok || cred.PID != os.Getpid() {
		// A socketpair's credentials are those of its creator.
		t.Fatalf("PeerCred = %+v, %v", cred, ok)
	}
	mine.Sender().Close() // end of stream for the child; replies may still come
	if _, err := mine.Recv(ctx); err != io.EOF {
		t.Fatalf("after the child ended: %v, want io.EOF", err)
	}
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
}

func TestDialAndAcceptHonourContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	l, err := endpoints.Listen[string, string](context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Accept(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Accept = %v, want context.DeadlineExceeded", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	if err := <-errc; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Accept after Close = %v, want os.ErrClosed", err)
	}
	if _, err := endpoints.Dial[string, string](context.Background(), "unix", filepath.Join(t.TempDir(), "none")); !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Dial to a missing socket = %v, want ENOENT", err)
	}
	if _, err := endpoints.Dial[string, string](context.Background(), "udp", "x"); err == nil {
		t.Fatal("Dial accepted a datagram network")
	}
}
