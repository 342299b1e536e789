package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
)

// envRole names the helper role a re-executed test binary plays.
const envRole = "IPCCHAN_CMD_TEST_ROLE"

// The uids the tests run other users' processes as: no such users need
// to exist for the kernel to enforce permissions.
const (
	otherUID = 65534 // nobody: makes objects
	thirdUID = 65533 // runs rm as an unprivileged user who is not the owner
)

var roles = map[string]func() error{
	// make-objects makes one object of every kind ipcchan names, with the
	// defaults (0600, this user's), and exits without removing any: its
	// pid, in their names and keys, is then that of a process gone.
	"make-objects": func() error {
		if _, err := endpoints.CreateShm(endpoints.ObjectName("other"), 4096); err != nil {
			return err
		}
		if _, err := endpoints.CreateSemaphore(endpoints.ObjectName("other"), 1); err != nil {
			return err
		}
		if err := endpoints.CreateMQ(endpoints.ObjectName("other"), endpoints.MQAttr{MaxMsgs: 1, MsgSize: 64}); err != nil {
			return err
		}
		if _, err := endpoints.CreateSysVQueue(endpoints.ObjectKey()); err != nil {
			return err
		}
		if _, err := endpoints.CreateSemSet(endpoints.ObjectKey(), 1); err != nil {
			return err
		}
		if _, err := endpoints.CreateSysVShm(endpoints.ObjectKey(), 4096); err != nil {
			return err
		}
		if _, err := endpoints.Listen[int, int](context.Background(), "unix", filepath.Join(os.Getenv("SOCK_DIR"), "other.sock")); err != nil {
			return err
		}
		os.Exit(0) // leave it all behind
		return nil
	},
	// cmd runs the command with the arguments in CMD_ARGS and prints its
	// output and status.
	"cmd": func() error {
		var out bytes.Buffer
		code := run(strings.Fields(os.Getenv("CMD_ARGS")), &out, &out)
		fmt.Printf("%sstatus %d\n", out.String(), code)
		return nil
	},
	// swap makes SWAP_DIR/x.lock a regular file and SWAP_DIR/x.swap a
	// FIFO, and exchanges them as fast as it can until its standard input
	// closes: a lock file that is now and then a FIFO no one writes to.
	// It makes either again should it be removed.
	"swap": func() error {
		dir := os.Getenv("SWAP_DIR")
		lock, fifo := filepath.Join(dir, "x.lock"), filepath.Join(dir, "x.swap")
		var stop atomic.Bool
		go func() { io.Copy(io.Discard, os.Stdin); stop.Store(true) }()
		started := false
		for deadline := time.Now().Add(time.Minute); !stop.Load() && time.Now().Before(deadline); {
			err := unix.Renameat2(unix.AT_FDCWD, lock, unix.AT_FDCWD, fifo, unix.RENAME_EXCHANGE)
			if err == unix.ENOENT {
				// Removed (or not made yet): make what is missing, so
				// that one is a regular file and the other a FIFO.
				if err := remake(lock, fifo); err != nil {
					return err
				}
				if err := remake(fifo, lock); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return err
			}
			if !started {
				fmt.Println("swapping")
				started = true
			}
		}
		return nil
	},
}

// remake makes path, if it is missing, a regular file unless other is
// one, and a FIFO then.
func remake(path, other string) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	if st, err := os.Lstat(other); err == nil && st.Mode().IsRegular() {
		return unix.Mkfifo(path, 0o600)
	}
	return os.WriteFile(path, nil, 0o600)
}

func TestMain(m *testing.M) {
	if role, ok := os.LookupEnv(envRole); ok && !strings.HasPrefix(role, "isolated-") {
		f := roles[role]
		if f == nil {
			fmt.Fprintf(os.Stderr, "unknown %s=%q\n", envRole, role)
			os.Exit(2)
		}
		if err := f(); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// isolated runs f in a child process that has an IPC namespace of its own,
// and a /dev/shm and /dev/mqueue of its own, so that rm run as root in it
// sees only what the test made there (never another test's objects). f is
// given a world-writable, sticky directory, like /tmp, and helper, which
// starts a helper role as a user. It skips t unless the test runs as root.
func isolated(t *testing.T, name string, f func(dir string, helper func(uid int, role string, env ...string) *exec.Cmd) error) {
	t.Helper()
	role := "isolated-" + name
	if os.Getenv(envRole) == role { // this is the child
		err := unix.Mount("tmpfs", "/dev/shm", "tmpfs", 0, "mode=1777,size=1m")
		if err != nil {
			err = fmt.Errorf("mount a tmpfs on /dev/shm: %w", err)
		} else {
			unix.Mount("mqueue", "/dev/mqueue", "mqueue", 0, "") // where the directory exists
			bin := os.Getenv("TEST_BIN")
			err = f(os.Getenv("TEST_DIR"), func(uid int, role string, env ...string) *exec.Cmd {
				cmd := exec.Command(bin, "-test.run=^$")
				cmd.Env = append(append(os.Environ(), envRole+"="+role), env...)
				cmd.Stderr = os.Stderr
				if uid != 0 {
					cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
				}
				return cmd
			})
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Skip("these tests run processes as other users and in namespaces of their own, which needs root; skipping")
	}
	// The other users must be able to execute the binary.
	dir, err := os.MkdirTemp("", "ipcchan-cmd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "ipcchan.test")
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), envRole+"="+role, "TEST_BIN="+bin, "TEST_DIR="+sharedDir(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWIPC, Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if ctx.Err() != nil {
		t.Fatalf("the test process hung (killed after 60 s)")
	}
	if errors.Is(err, unix.EPERM) {
		t.Skipf("cannot start a process in namespaces of its own: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// sharedDir returns a world-writable, sticky directory, like /tmp.
func sharedDir(t *testing.T) string {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o1777)
	return dir
}

// rm does not trust the pid in a name or key: another user's objects,
// named as ours by a process that is gone, are left alone — and said so —
// by rm run as an unprivileged user and by rm run as root, unless root
// passes -all-users; ls shows whose each object is.
func TestRmLeavesOtherUsersObjects(t *testing.T) {
	isolated(t, "other-users", func(sockDir string, helper func(int, string, ...string) *exec.Cmd) error {
		if err := helper(otherUID, "make-objects", "SOCK_DIR="+sockDir).Run(); err != nil {
			return fmt.Errorf("making another user's objects: %w", err)
		}
		// shm, semaphore, posix mq (found with or without /dev/mqueue
		// mounted), sysv mq, sem, shm, socket
		want := 7
		theirs := func() int {
			var all []endpoints.Leftover
			var err error
			withQueues(func(string) { all, err = endpoints.Leftovers(sockDir) })
			if err != nil {
				fmt.Printf("Leftovers: %v\n", err)
			}
			n := 0
			for _, l := range all {
				if l.UID == otherUID {
					n++
				}
			}
			return n
		}
		var errs []error
		check := func(what string, out []byte, wantStatus int) {
			fmt.Printf("%s:\n%s", what, out)
			if n := theirs(); n != want {
				errs = append(errs, fmt.Errorf("%s: %d of the other user's %d objects left", what, n, want))
			}
			if !bytes.HasSuffix(out, fmt.Appendf(nil, "status %d\n", wantStatus)) {
				errs = append(errs, fmt.Errorf("%s: want status %d", what, wantStatus))
			}
		}
		if n := theirs(); n != want {
			return fmt.Errorf("%d of the other user's objects listed, want %d", n, want)
		}
		out, err := helper(0, "cmd", "CMD_ARGS=ls "+sockDir).Output()
		if err != nil {
			return err
		}
		if c := bytes.Count(out, fmt.Appendf(nil, "uid %d", otherUID)); c != want {
			errs = append(errs, fmt.Errorf("ls shows uid %d on %d lines, want %d:\n%s", otherUID, c, want, out))
		}
		// An unprivileged user who is not the owner: nothing removed, and
		// no error either: it is not theirs to remove.
		out, err = helper(thirdUID, "cmd", "CMD_ARGS=rm "+sockDir).Output()
		if err != nil {
			return err
		}
		check("rm as uid 65533", out, 0)
		// Root, without -all-users: nothing removed, each said skipped.
		out, err = helper(0, "cmd", "CMD_ARGS=rm "+sockDir).Output()
		if err != nil {
			return err
		}
		check("rm as root", out, 0)
		if c := bytes.Count(out, []byte("skipped ")); c != want {
			errs = append(errs, fmt.Errorf("rm as root said %d objects were skipped, want %d", c, want))
		}
		if !bytes.Contains(out, []byte("-all-users")) {
			errs = append(errs, errors.New("rm as root does not say how to remove other users' objects"))
		}
		// Root, asking for it: all removed.
		out, err = helper(0, "cmd", "CMD_ARGS=rm -all-users "+sockDir).Output()
		if err != nil {
			return err
		}
		fmt.Printf("rm -all-users as root:\n%s", out)
		if n := theirs(); n != 0 {
			errs = append(errs, fmt.Errorf("rm -all-users as root left %d of the other user's objects", n))
		}
		if names, _ := os.ReadDir(sockDir); len(names) != 0 {
			errs = append(errs, fmt.Errorf("rm -all-users left %d files in the socket directory", len(names)))
		}
		return errors.Join(errs...)
	})
}

// A FIFO that another user swaps in for a lock file makes neither ls nor
// rm DIR wait for a writer: they open nothing that can block.
func TestLsRmDoNotBlockOnAFIFO(t *testing.T) {
	isolated(t, "fifo", func(dir string, helper func(int, string, ...string) *exec.Cmd) error {
		swap := helper(otherUID, "swap", "SWAP_DIR="+dir)
		stdin, _ := swap.StdinPipe()
		stdout, _ := swap.StdoutPipe()
		if err := swap.Start(); err != nil {
			return err
		}
		defer func() {
			if swap.ProcessState == nil {
				swap.Process.Kill()
				swap.Wait()
			}
		}()
		if line := make([]byte, 9); func() bool { n, _ := io.ReadFull(stdout, line); return string(line[:n]) != "swapping\n" }() {
			return errors.New("the swapper did not start")
		}
		var out bytes.Buffer
		listed := 0
		for i := range 2000 {
			cmd := "ls"
			if i >= 1000 {
				cmd = "rm"
			}
			out.Reset()
			if code := run([]string{cmd, dir}, &out, &out); code != 0 {
				return fmt.Errorf("%s %s: status %d:\n%s", cmd, dir, code, out.String())
			}
			if strings.Contains(out.String(), filepath.Join(dir, "x")+"\n") {
				listed++
			}
		}
		if listed == 0 {
			return errors.New("the lock file was never listed: the swapper made no lock file to find")
		}
		stdin.Close()
		if err := swap.Wait(); err != nil {
			return fmt.Errorf("the swapper: %w", err)
		}
		fmt.Printf("the lock file was listed by %d of 2000 ls and rm; the last rm:\n%s", listed, out.String())
		return nil
	})
}
