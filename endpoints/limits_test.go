package endpoints_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/ipcchan/endpoints"
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
	if after := openFDs(); after != before {
		return fmt.Errorf("%s: %d descriptors open before, %d after", what, before, after)
	}
	return nil
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
		tx, rx, err := endpoints.Pipe[int]() // start the runtime poller first
		if err != nil {
			return err
		}
		tx.Close()
		rx.Close()
		var lim unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return err
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
				tx, rx, err := endpoints.Pipe[int]()
				return closers{tx, rx}, err
			}},
			{"Socketpair", func() (io.Closer, error) {
				a, b, err := endpoints.Socketpair[int, int]()
				return closers{a, b}, err
			}},
			{"MQPair", func() (io.Closer, error) {
				tx, rx, err := endpoints.MQPair[int](endpoints.MQAttr{MaxMsgs: 1, MsgSize: 16})
				return closers{tx, rx}, err
			}},
			{"NewMemfd", func() (io.Closer, error) { return endpoints.NewMemfd("limit", 4096) }},
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
