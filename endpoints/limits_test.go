package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// These tests exhaust a limit in a helper process (and, for the system
// limits, in an IPC namespace of its own, so that the machine's objects
// are untouched): the error must name the limit, wrap the errno, and leak
// nothing.

func openFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

// exhaust calls make until it fails, checks the failure, closes what it
// made, and checks that no descriptor is left over.
func exhaust(what string, want syscall.Errno, mention string, make func() (io.Closer, error)) error {
	before := openFDs()
	var made []io.Closer
	defer func() {
		for _, c := range made {
			c.Close()
		}
	}()
	for {
		c, err := make()
		if err == nil {
			if made = append(made, c); len(made) > 1000 {
				return fmt.Errorf("%s: no limit reached after 1000", what)
			}
			continue
		}
		if !errors.Is(err, want) || !strings.Contains(err.Error(), mention) {
			return fmt.Errorf("%s: %v; want %v naming %s", what, err, want, mention)
		}
		fmt.Printf("%s after %d: %v\n", what, len(made), err)
		break
	}
	for _, c := range made {
		c.Close()
	}
	made = nil
	// The process watcher lets go of its descriptors once its last watch
	// ends, on its own goroutine: give it a moment.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
		after := openFDs()
		if after == before {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %d descriptors open before, %d after", what, before, after)
		}
	}
}

type closers []io.Closer

func (cs closers) Close() error {
	for _, c := range cs {
		c.Close()
	}
	return nil
}

func init() {
	childRoles["limit-nofile"] = func() error {
		tx, rx, err := endpoints.PipePair[int]() // start the runtime poller first
		if err != nil {
			return err
		}
		tx.Close()
		rx.Close()
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "ipcchan-limit-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		l, err := endpoints.Listen[int, int](context.Background(), "unix", dir+"/listener")
		if err != nil {
			return err
		}
		defer l.Close()
		n := 0
		unique := func(prefix string) string { n++; return fmt.Sprintf("%s/%s%d", dir, prefix, n) }
		ctx := context.Background()
		// Clients waiting to be accepted, so that Accept is what runs out.
		var clients closers
		defer func() { clients.Close() }()
		for range 20 {
			c, err := endpoints.Dial[int, int](ctx, "unix", l.Addr())
			if err != nil {
				return err
			}
			clients = append(clients, c)
		}
		lim.Cur = uint64(openFDs() + 7)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return err
		}
		for _, c := range []struct {
			what string
			make func() (io.Closer, error)
		}{
			{"Pipe", func() (io.Closer, error) {
				tx, rx, err := endpoints.PipePair[int]()
				return closers{tx, rx}, err
			}},
			{"Socketpair", func() (io.Closer, error) {
				a, b, err := endpoints.SocketPair[int, int]()
				return closers{a, b}, err
			}},
			{"MQPair", func() (io.Closer, error) {
				tx, rx, err := endpoints.MQPair[int](endpoints.MQAttr{MaxMsgs: 1, MsgSize: 16})
				return closers{tx, rx}, err
			}},
			{"NewMemfd", func() (io.Closer, error) { return endpoints.NewMemfd("limit", 4096) }},
			{"RingPair", func() (io.Closer, error) {
				tx, rx, err := endpoints.RingPair[int](4096)
				return closers{tx, rx}, err
			}},
			{"OpenFIFOReceiver", func() (io.Closer, error) {
				path := unique("fifo")
				if err := endpoints.CreateFIFO(path); err != nil {
					return nil, err
				}
				return endpoints.OpenFIFOReceiver[int](ctx, path)
			}},
			{"Listen", func() (io.Closer, error) { return endpoints.Listen[int, int](ctx, "unix", unique("sock")) }},
			{"Listen tcp", func() (io.Closer, error) { return endpoints.Listen[int, int](ctx, "tcp", "127.0.0.1:0") }},
			{"Dial", func() (io.Closer, error) { return endpoints.Dial[int, int](ctx, "unix", l.Addr()) }},
			{"ListenPacket", func() (io.Closer, error) {
				rx, _, err := endpoints.ListenPacket[int](ctx, "unixgram", unique("gram"))
				return rx, err
			}},
			{"CreateShm", func() (io.Closer, error) {
				name := endpoints.ObjectName("limit")
				m, err := endpoints.CreateShm(name, 4096)
				if err != nil {
					return nil, err
				}
				return closers{m, removeCloser(func() error { return endpoints.RemoveShm(name) })}, nil
			}},
			{"CreateFileMapping", func() (io.Closer, error) { return endpoints.CreateFileMapping(unique("map"), 4096) }},
			{"CreateSemaphore", func() (io.Closer, error) {
				name := endpoints.ObjectName("limit")
				s, err := endpoints.CreateSemaphore(name, 1)
				if err != nil {
					return nil, err
				}
				return closers{s, removeCloser(func() error { return endpoints.RemoveSemaphore(name) })}, nil
			}},
			{"OpenLock", func() (io.Closer, error) { return endpoints.OpenLock(unique("lock"), endpoints.OFDLocks) }},
			{"Accept", func() (io.Closer, error) { return l.Accept(ctx) }},
			{"Select", func() (io.Closer, error) {
				// A Select that has to wait needs an epoll set and an event.
				tx, rx, err := endpoints.PipePair[int]()
				if err != nil {
					return nil, err
				}
				sctx, cancel := context.WithTimeout(ctx, time.Millisecond)
				defer cancel()
				_, err = ipcchan.Select(sctx, ipcchan.OnRecv(rx, func(int) {}))
				if err == context.DeadlineExceeded {
					err = nil
				}
				if err != nil {
					tx.Close()
					rx.Close()
				}
				return closers{tx, rx}, err
			}},
			{"WatchPeer", func() (io.Closer, error) {
				tx, rx, err := endpoints.MQPair[int](endpoints.MQAttr{MaxMsgs: 1, MsgSize: 16})
				if err != nil {
					return nil, err
				}
				if err := rx.WatchPeer(os.Getppid()); err != nil {
					tx.Close()
					rx.Close()
					return nil, err
				}
				return closers{tx, rx}, nil
			}},
			{"CreateMQ", func() (io.Closer, error) {
				name := endpoints.ObjectName("limit")
				if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 1, MsgSize: 16}); err != nil {
					return nil, err
				}
				rx, err := endpoints.OpenMQReceiver[int](name)
				endpoints.RemoveMQ(name)
				return rx, err
			}},
		} {
			if err := exhaust(c.what, unix.EMFILE, "RLIMIT_NOFILE", c.make); err != nil {
				return err
			}
		}
		return nil
	}
	childRoles["limit-msgmni"] = func() error {
		if err := os.WriteFile("/proc/sys/kernel/msgmni", []byte("2"), 0); err != nil {
			return err
		}
		return exhaust("CreateSysVQueue", unix.ENOSPC, "kernel.msgmni", func() (io.Closer, error) {
			q, err := endpoints.CreateSysVQueue(endpoints.IPCPrivate)
			if err != nil {
				return nil, err
			}
			return removeCloser(q.Remove), nil
		})
	}
	childRoles["mq-sizes"] = func() error {
		// Above the system's maxima, which bind a user without
		// CAP_SYS_RESOURCE: the error names the sysctl to raise.
		if err := syscall.Setuid(otherUID); err != nil {
			return err
		}
		for _, c := range []struct {
			attr    endpoints.MQAttr
			mention string
		}{
			{endpoints.MQAttr{MaxMsgs: 1 << 20, MsgSize: 16}, "at most 65536"},
			{endpoints.MQAttr{MaxMsgs: 100000000, MsgSize: 16}, "at most 65536"},
			{endpoints.MQAttr{MaxMsgs: -1, MsgSize: 16}, "at least one message"},
			{endpoints.MQAttr{MaxMsgs: 1, MsgSize: 32 << 20}, "at most 16777216"},
			{endpoints.MQAttr{MaxMsgs: readSysctlInt("fs/mqueue/msg_max") + 1, MsgSize: 16}, "fs.mqueue.msg_max"},
			{endpoints.MQAttr{MaxMsgs: 1, MsgSize: readSysctlInt("fs/mqueue/msgsize_max") + 1}, "fs.mqueue.msgsize_max"},
		} {
			name := endpoints.ObjectName("sizes")
			err := endpoints.CreateMQ(name, c.attr)
			if err == nil {
				endpoints.RemoveMQ(name)
				return fmt.Errorf("CreateMQ(%+v) succeeded", c.attr)
			}
			if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), c.mention) {
				return fmt.Errorf("CreateMQ(%+v) = %v; want EINVAL saying %q", c.attr, err, c.mention)
			}
			fmt.Println(err)
		}
		return nil
	}
	childRoles["limit-queues-max"] = func() error {
		if err := os.WriteFile("/proc/sys/fs/mqueue/queues_max", []byte("1"), 0); err != nil {
			return err
		}
		// The limit binds only processes without CAP_SYS_RESOURCE.
		if err := syscall.Setuid(otherUID); err != nil {
			return err
		}
		return exhaust("MQPair", unix.ENOSPC, "fs.mqueue.queues_max", func() (io.Closer, error) {
			tx, rx, err := endpoints.MQPair[int](endpoints.MQAttr{MaxMsgs: 1, MsgSize: 16})
			return closers{tx, rx}, err
		})
	}
}

type removeCloser func() error

func (f removeCloser) Close() error { return f() }

func readSysctlInt(name string) int {
	b, _ := os.ReadFile("/proc/sys/" + name)
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// A queue larger than the system allows is refused with an error naming
// the sysctl (it said "invalid argument").
func TestCreateMQSizesSayWhatToRaise(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the test runs its child as another user, which needs root; skipping")
	}
	out, err := helperCmd(t, "mq-sizes").Output()
	t.Logf("%s", out)
	if err != nil {
		t.Fatal(err)
	}
}

func TestResourceLimits(t *testing.T) {
	t.Run("RLIMIT_NOFILE", func(t *testing.T) {
		out, err := helperCmd(t, "limit-nofile").Output()
		t.Logf("%s", out)
		if err != nil {
			t.Fatal(err)
		}
	})
	for _, limit := range []string{"msgmni", "queues-max"} {
		t.Run(limit, func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("lowering a system limit in a private IPC namespace needs root; skipping")
			}
			cmd := helperCmd(t, "limit-"+limit)
			cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC}
			out, err := cmd.Output()
			t.Logf("%s", out)
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}
