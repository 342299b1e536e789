package endpoints_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// The kinds of object an open can wait for (ipcchan.WithWaitForCreate).
// id names the object: a path, a POSIX name or a SysV key in decimal.
type waitKind struct {
	name string
	id   func(t *testing.T) string
	// open opens the object, waiting with wait; ctx is the call's own
	// context where the constructor takes one. It returns what to do with
	// the object once open (nil: nothing), and how to let it go.
	open func(ctx context.Context, id string, wait ipcchan.Option) (use func() error, done func(), err error)
	// create makes the object, in the child; remove removes it, in the test.
	create func(id string) error
	remove func(id string)
}

func keyOf(id string) endpoints.Key { k, _ := strconv.ParseInt(id, 10, 64); return endpoints.Key(k) }

func tempPath(t *testing.T, name string) string { return filepath.Join(t.TempDir(), name) }

var waitKinds = []waitKind{
	{
		name: "fifo receiver",
		id:   func(t *testing.T) string { return tempPath(t, "fifo") },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			rx, err := endpoints.OpenFIFOReceiver[string](ctx, id, wait)
			if err != nil {
				return nil, nil, err
			}
			return nil, func() { rx.Close() }, nil
		},
		create: func(id string) error { return endpoints.CreateFIFO(id) },
		remove: func(id string) { os.Remove(id) },
	},
	{
		// The child makes the FIFO and reads one value from it: the
		// sender waits for the FIFO, then for its reader.
		name: "fifo sender",
		id:   func(t *testing.T) string { return tempPath(t, "fifo") },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			tx, err := endpoints.OpenFIFOSender[string](ctx, id, wait)
			if err != nil {
				return nil, nil, err
			}
			return func() error { return tx.Send(ctx, "through the fifo") }, func() { tx.Close() }, nil
		},
		create: func(id string) error {
			if err := endpoints.CreateFIFO(id); err != nil {
				return err
			}
			rx, err := endpoints.OpenFIFOReceiver[string](context.Background(), id)
			if err != nil {
				return err
			}
			defer rx.Close()
			return expectValue(rx, "through the fifo")
		},
		remove: func(id string) { os.Remove(id) },
	},
	{
		name: "posix mq",
		id:   func(t *testing.T) string { return endpoints.ObjectName("wait-mq") },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			rx, err := endpoints.OpenMQReceiver[string](id, wait)
			if err != nil {
				return nil, nil, err
			}
			return nil, func() { rx.Close() }, nil
		},
		create: func(id string) error { return endpoints.CreateMQ(id, endpoints.MQAttr{MaxMsgs: 4, MsgSize: 64}) },
		remove: func(id string) { endpoints.RemoveMQ(id) },
	},
	{
		name: "sysv mq",
		id:   func(t *testing.T) string { return fmt.Sprint(int64(endpoints.ObjectKey())) },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			_, err := endpoints.OpenSysVQueue(keyOf(id), wait)
			return nil, func() {}, err
		},
		create: func(id string) error { _, err := endpoints.CreateSysVQueue(keyOf(id)); return err },
		remove: func(id string) {
			if q, err := endpoints.OpenSysVQueue(keyOf(id)); err == nil {
				q.Remove()
			}
		},
	},
	{
		name: "posix shm",
		id:   func(t *testing.T) string { return endpoints.ObjectName("wait-shm") },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			m, err := endpoints.OpenShm(id, wait)
			if err != nil {
				return nil, nil, err
			}
			return sizeIs(m, 4096), func() { m.Close() }, nil
		},
		create: func(id string) error { return closeMapping(endpoints.CreateShm(id, 4096)) },
		remove: func(id string) { endpoints.RemoveShm(id) },
	},
	{
		name: "file mapping",
		id:   func(t *testing.T) string { return tempPath(t, "mapped") },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			m, err := endpoints.OpenFileMapping(id, wait)
			if err != nil {
				return nil, nil, err
			}
			return sizeIs(m, 4096), func() { m.Close() }, nil
		},
		create: func(id string) error { return closeMapping(endpoints.CreateFileMapping(id, 4096)) },
		remove: func(id string) { os.Remove(id) },
	},
	{
		name: "sysv shm",
		id:   func(t *testing.T) string { return fmt.Sprint(int64(endpoints.ObjectKey())) },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			m, err := endpoints.OpenSysVShm(keyOf(id), wait)
			if err != nil {
				return nil, nil, err
			}
			return sizeIs(m, 4096), func() { m.Remove(); m.Close() }, nil
		},
		create: func(id string) error { return closeMapping(endpoints.CreateSysVShm(keyOf(id), 4096)) },
		remove: func(id string) {
			if m, err := endpoints.OpenSysVShm(keyOf(id)); err == nil {
				m.Remove()
				m.Close()
			}
		},
	},
	{
		// The child listens, accepts one connection and sends on it.
		name: "unix dial",
		id:   func(t *testing.T) string { return tempPath(t, "sock") },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			c, err := endpoints.Dial[string, string](ctx, "unix", id, wait)
			if err != nil {
				return nil, nil, err
			}
			return func() error { return expectValue(c.Receiver(), "from the listener") }, func() { c.Close() }, nil
		},
		create: func(id string) error {
			ctx := context.Background()
			l, err := endpoints.Listen[string, string](ctx, "unix", id)
			if err != nil {
				return err
			}
			defer l.Close()
			c, err := l.Accept(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Sender().Send(ctx, "from the listener")
		},
		remove: func(id string) { os.Remove(id) },
	},
	{
		// The child binds a datagram socket and receives one value.
		name: "unixgram dial",
		id:   func(t *testing.T) string { return tempPath(t, "dgram") },
		open: func(ctx context.Context, id string, wait ipcchan.Option) (func() error, func(), error) {
			tx, err := endpoints.DialPacket[string](ctx, "unixgram", id, wait)
			if err != nil {
				return nil, nil, err
			}
			return func() error { return tx.Send(ctx, "a datagram") }, func() { tx.Close() }, nil
		},
		create: func(id string) error {
			rx, _, err := endpoints.ListenPacket[string](context.Background(), "unixgram", id)
			if err != nil {
				return err
			}
			defer rx.Close()
			return expectValue(rx, "a datagram")
		},
		remove: func(id string) { os.Remove(id) },
	},
}

func expectValue(rx *ipcchan.Receiver[string], want string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := rx.Recv(ctx)
	if err == nil && got != want {
		err = fmt.Errorf("received %q, want %q", got, want)
	}
	return err
}

func sizeIs(m *endpoints.Mapping, n int) func() error {
	return func() error {
		if m.Len() != n {
			return fmt.Errorf("mapped %d bytes, want %d", m.Len(), n)
		}
		return nil
	}
}

func closeMapping(m *endpoints.Mapping, err error) error {
	if err == nil {
		m.Close()
	}
	return err
}

func init() {
	childRoles["wait-create"] = func() error {
		kind := os.Getenv("WAIT_KIND")
		for _, k := range waitKinds {
			if k.name == kind {
				return k.create(os.Getenv("WAIT_ID"))
			}
		}
		return fmt.Errorf("no kind %q", kind)
	}
	childRoles["wait-late"] = lateCreator
}

// waitingFor installs the wait hook for objects whose description holds
// id and returns a channel that gets a value each time such an open is
// about to sleep.
func waitingFor(t *testing.T, id string) <-chan struct{} {
	t.Helper()
	ch := make(chan struct{}, 64)
	t.Cleanup(endpoints.SetWaitHook(func(desc string) {
		if strings.Contains(desc, id) || strings.Contains(desc, fmt.Sprintf("%#x", keyOf(id))) {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}))
	return ch
}

func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

type openResult struct {
	use  func() error
	done func()
	err  error
}

// An open that starts before the object exists waits, and succeeds once
// another process has created it; without the option it fails at once
// with an error wrapping os.ErrNotExist, as before.
func TestWaitForCreate(t *testing.T) {
	for _, k := range waitKinds {
		t.Run(k.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			id := k.id(t)
			t.Cleanup(func() { k.remove(id) })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			if _, _, err := k.open(ctx, id, ipcchan.Option{}); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("without the option: %v, want os.ErrNotExist", err)
			}

			waiting := waitingFor(t, id)
			res := make(chan openResult, 1)
			go func() {
				use, done, err := k.open(ctx, id, ipcchan.WithWaitForCreate(ctx))
				res <- openResult{use, done, err}
			}()
			await(t, waiting, "the open to wait")
			child := startHelper(t, "wait-create", []string{"WAIT_KIND=" + k.name, "WAIT_ID=" + id})
			var r openResult
			select {
			case r = <-res:
			case <-ctx.Done():
				t.Fatal("the open did not return once the object was made")
			}
			if r.err != nil {
				t.Fatalf("open: %v", r.err)
			}
			defer r.done()
			if r.use != nil {
				if err := r.use(); err != nil {
					t.Fatal(err)
				}
			}
			if err := child.wait(); err != nil {
				t.Fatalf("creator: %v", err)
			}
		})
	}
}

// A waiting open ends with the context's error when its context is
// cancelled — the option's, or the constructor's own — and leaves no
// descriptor (inotify's included) and no goroutine behind (TestMain's
// goleak).
func TestWaitForCreateCancel(t *testing.T) {
	for _, k := range waitKinds {
		for _, which := range []string{"option", "call"} {
			if which == "call" && !strings.Contains(k.name, "fifo") && !strings.Contains(k.name, "dial") {
				continue // the constructor takes no context
			}
			t.Run(k.name+"/"+which, func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				id := k.id(t)
				waiting := waitingFor(t, id)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				call, opt := context.Background(), ipcchan.WithWaitForCreate(ctx)
				if which == "call" {
					call, opt = ctx, ipcchan.WithWaitForCreate(context.Background())
				}
				res := make(chan error, 1)
				go func() {
					_, done, err := k.open(call, id, opt)
					if err == nil {
						done()
					}
					res <- err
				}()
				await(t, waiting, "the open to wait")
				cancel()
				select {
				case err := <-res:
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("cancelled wait: %v, want context.Canceled", err)
					}
				case <-time.After(20 * time.Second):
					t.Fatal("the cancelled open did not return")
				}
			})
		}
	}
}

// A constructor without a context refuses a wait that nothing could end;
// one with a context honours context.Background() (bounded by its own).
func TestWaitForCreateUnbounded(t *testing.T) {
	_, err := endpoints.OpenShm(endpoints.ObjectName("never"), ipcchan.WithWaitForCreate(context.Background()))
	if !errors.Is(err, ipcchan.ErrOption) {
		t.Fatalf("OpenShm waiting without bound: %v, want ErrOption", err)
	}
	//lint:ignore SA1012 a nil context is the careless input whose refusal this tests
	_, err = endpoints.OpenSysVQueue(endpoints.ObjectKey(), ipcchan.WithWaitForCreate(nil))
	if !errors.Is(err, ipcchan.ErrOption) {
		t.Fatalf("a nil context: %v, want ErrOption", err)
	}
}

// lateCreator makes an object empty, then sizes it, then formats a ring
// in it, each step when a line on stdin says the opener waits again.
func lateCreator() error {
	id, kind := os.Getenv("WAIT_ID"), os.Getenv("WAIT_KIND")
	in := bufio.NewReader(os.Stdin)
	path := id
	if kind == "posix shm" {
		path = "/dev/shm" + id
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	fmt.Println("created empty")
	if _, err := in.ReadString('\n'); err != nil {
		return err
	}
	if err := unix.Ftruncate(fd, 64<<10); err != nil {
		return err
	}
	if _, err := in.ReadString('\n'); err != nil {
		return err
	}
	var m *endpoints.Mapping
	if kind == "posix shm" {
		m, err = endpoints.OpenShm(id)
	} else {
		m, err = endpoints.OpenFileMapping(id)
	}
	if err != nil {
		return err
	}
	defer m.Close()
	return endpoints.FormatRing(m)
}

// An object created empty and sized later: the open waits for the size,
// and a ring end opened in it waits for the ring to be formatted.
func TestWaitForCreateSizedLate(t *testing.T) {
	for _, kind := range []string{"posix shm", "file mapping"} {
		t.Run(kind, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			id := endpoints.ObjectName("late")
			open := endpoints.OpenShm
			if kind == "file mapping" {
				id, open = tempPath(t, "late"), endpoints.OpenFileMapping
			}
			t.Cleanup(func() {
				if kind == "posix shm" {
					endpoints.RemoveShm(id)
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			wait := ipcchan.WithWaitForCreate(ctx)
			waiting := waitingFor(t, id)

			type mapped struct {
				m   *endpoints.Mapping
				err error
			}
			res := make(chan mapped, 1)
			go func() {
				m, err := open(id, wait)
				res <- mapped{m, err}
			}()
			await(t, waiting, "the open to wait")
			cmd := helperCmd(t, "wait-late", "WAIT_KIND="+kind, "WAIT_ID="+id)
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer stdin.Close()
			if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "created empty\n" {
				t.Fatalf("creator: %q, %v", line, err)
			}
			for len(waiting) > 0 { // the waits before the creation
				<-waiting
			}
			await(t, waiting, "the open to wait on the empty object")
			select {
			case r := <-res:
				t.Fatalf("the open returned before the object was sized: %v", r.err)
			default:
			}
			io.WriteString(stdin, "size\n")
			r := <-res
			if r.err != nil {
				t.Fatalf("open: %v", r.err)
			}
			defer r.m.Close()
			if r.m.Len() != 64<<10 {
				t.Fatalf("mapped %d bytes", r.m.Len())
			}

			rxc := make(chan error, 1)
			go func() {
				rx, err := endpoints.RingReceiver[string](r.m, wait)
				if err == nil {
					rx.Close()
				}
				rxc <- err
			}()
			await(t, waiting, "the ring end to wait for the format")
			io.WriteString(stdin, "format\n")
			if err := <-rxc; err != nil {
				t.Fatalf("ring receiver: %v", err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("creator: %v", err)
			}
		})
	}
}
