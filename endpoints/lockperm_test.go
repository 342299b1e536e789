package endpoints_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

func init() {
	// lock-plant makes, as another user, a world-writable file at
	// LOCK_PATH: a lock file planted for someone else to use.
	childRoles["lock-plant"] = func() error {
		path := os.Getenv("LOCK_PATH")
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o666)
		if err != nil {
			return err
		}
		f.Close()
		return os.Chmod(path, 0o666)
	}
	// lock-try opens LOCK_PATH with OpenLock and tries to take it, and
	// says how it went on one line.
	childRoles["lock-try"] = func() error {
		var opts []ipcchan.Option
		if os.Getenv("LOCK_TRUST_ROOT") != "" {
			opts = append(opts, ipcchan.WithTrustedOwners(0))
		}
		l, err := endpoints.OpenLock(os.Getenv("LOCK_PATH"), endpoints.OFDLocks, opts...)
		switch {
		case errors.Is(err, fs.ErrPermission):
			fmt.Printf("refused: %v\n", err)
		case err != nil:
			fmt.Printf("error: %v\n", err)
		case l.TryLock():
			fmt.Println("locked")
		default:
			fmt.Println("busy")
		}
		if l != nil {
			l.Close()
		}
		return nil
	}
}

// lockTry runs cmd, a lock-try helper, and returns the line it printed.
func lockTry(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("lock-try: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// A lock file another user made at our path — planted after its owner
// removed it, world-writable — is refused by OpenLock and by the lock calls
// of a FileLock opened before, so no two processes hold the lock at once:
// the process that holds the removed file, and one that would lock the
// planted one. A user trusted with ipcchan.WithTrustedOwners is accepted.
func TestLockFilePlantedByAnotherUserIsRefused(t *testing.T) {
	dir := sharedDir(t)
	path := filepath.Join(dir, "app.lock")
	plant := otherUser(t, "lock-plant", "LOCK_PATH="+path)

	holder, err := endpoints.OpenLock(path, endpoints.OFDLocks)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := holder.Lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	waiter, err := endpoints.OpenLock(path, endpoints.OFDLocks) // the file the holder holds
	if err != nil {
		t.Fatal(err)
	}
	defer waiter.Close()

	// The owner removes the lock file while holding it; another user makes
	// one again at once.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := plant.Run(); err != nil {
		t.Fatalf("planting the lock file: %v", err)
	}
	defer os.Remove(path)

	// Another process of ours opens the path: it must not lock the planted
	// file while the holder holds the lock.
	got := lockTry(t, helperCmd(t, "lock-try", "LOCK_PATH="+path))
	if !strings.HasPrefix(got, "refused: ") || !strings.Contains(got, "uid 65534") || !strings.Contains(got, "WithTrustedOwners") {
		t.Errorf("another process of ours on the planted lock file: %q, want it refused (fs.ErrPermission), naming the owner and WithTrustedOwners", got)
	}

	// The waiter, which opened the removed file, must not take it once
	// the holder lets go: the path names the planted file now.
	if err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if waiter.TryLock() {
		t.Error("TryLock took the removed lock file while the path names another user's")
		waiter.Unlock()
	}
	if err := waiter.Lock(testCtx(t)); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Lock with another user's file at the path = %v, want an error wrapping fs.ErrPermission", err)
		if err == nil {
			waiter.Unlock()
		}
	}

	// Trusted on purpose, the file is used.
	shared, err := endpoints.OpenLock(path, endpoints.OFDLocks, ipcchan.WithTrustedOwners(otherUID))
	if err != nil {
		t.Fatalf("OpenLock with WithTrustedOwners(%d): %v", otherUID, err)
	}
	defer shared.Close()
	if !shared.TryLock() {
		t.Error("TryLock on a trusted user's free lock file failed")
	}
}

// Not being root, OpenLock refuses a lock file root made unless
// ipcchan.WithTrustedOwners(0) asks for it.
func TestLockFileOfRootNeedsTrust(t *testing.T) {
	dir := sharedDir(t)
	path := filepath.Join(dir, "system.lock")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o666)
	try := func(env ...string) string {
		return lockTry(t, otherUser(t, "lock-try", append([]string{"LOCK_PATH=" + path}, env...)...))
	}
	if got := try(); !strings.HasPrefix(got, "refused: ") || !strings.Contains(got, "uid 0") || !strings.Contains(got, "WithTrustedOwners(0)") {
		t.Errorf("another user on root's lock file: %q, want it refused, naming WithTrustedOwners(0)", got)
	}
	if got := try("LOCK_TRUST_ROOT=1"); got != "locked" {
		t.Errorf("another user on root's lock file with WithTrustedOwners(0): %q, want locked", got)
	}
}

// A lock call that finds the lock file removed and made again since it
// was opened moves to the file now at the path: a process that locked the
// new file and a FileLock opened on the old one never both hold it.
func TestLockFollowsAReplacedLockFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.lock")
	first, err := endpoints.OpenLock(path, endpoints.OFDLocks)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	late, err := endpoints.OpenLock(path, endpoints.OFDLocks) // the first file
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if err := first.Lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	// The holder removes the file before it unlocks; another process
	// makes a new one and takes it.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	other := helperCmd(t, "hold-and-hang", "IPCCHAN_LOCK="+path)
	out, _ := other.StdoutPipe()
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "held\n" {
		t.Fatalf("the other process: %q %v", line, err)
	}
	first.Unlock()

	if late.TryLock() {
		t.Fatal("TryLock took the removed lock file while another process holds the one at the path")
	}
	short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err = late.Lock(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock while another process holds the file at the path = %v, want context.DeadlineExceeded", err)
	}
	other.Process.Kill()
	other.Wait()
	if err := late.Lock(testCtx(t)); err != nil {
		t.Fatalf("Lock after the other process died: %v", err)
	}
	defer late.Unlock()
	st, err := late.File().Stat()
	if err != nil {
		t.Fatal(err)
	}
	if now, err := os.Lstat(path); err != nil || !os.SameFile(st, now) {
		t.Errorf("File() is not the file at the path (%v)", err)
	}
}

// OpenLock opens nothing but a regular file: a FIFO at the path (which
// could block the open, or never hold a lock's meaning) is refused
// without waiting.
func TestLockFileMustBeARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.lock")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		l, err := endpoints.OpenLock(fifo, endpoints.OFDLocks)
		if err == nil {
			l.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("OpenLock on a FIFO = %v, want an error wrapping fs.ErrExist saying it is not a regular file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OpenLock on a FIFO hung")
	}
	link := filepath.Join(dir, "link.lock")
	os.Symlink(filepath.Join(dir, "target"), link)
	if _, err := endpoints.OpenLock(link, endpoints.OFDLocks); !errors.Is(err, unix.ELOOP) {
		t.Errorf("OpenLock on a symbolic link = %v, want ELOOP", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "target")); !os.IsNotExist(err) {
		t.Errorf("OpenLock made the symbolic link's target: %v", err)
	}
}

// A lock file OpenLock makes has the mode WithPerm asks for, whatever the
// umask, so that a group can share it on purpose.
func TestLockFilePermIgnoresUmask(t *testing.T) {
	path := filepath.Join(t.TempDir(), "group.lock")
	old := unix.Umask(0o077)
	l, err := endpoints.OpenLock(path, endpoints.OFDLocks, ipcchan.WithPerm(0o660))
	unix.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o660 {
		t.Errorf("mode %v (%v), want 0660", st.Mode(), err)
	}
}
