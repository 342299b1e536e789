package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// A counter in a file, incremented by several processes each under one of
// the primitives: the final count is exact only if the primitive excludes.
func init() {
	childRoles["count-under"] = func() error {
		ctx := context.Background()
		path := os.Getenv("IPCCHAN_COUNTER")
		var lock, unlock func() error
		switch kind := os.Getenv("IPCCHAN_PRIMITIVE"); kind {
		case "posix-sem":
			s, err := endpoints.OpenSemaphore(os.Getenv("IPCCHAN_SEM"))
			if err != nil {
				return err
			}
			defer s.Close()
			lock = func() error { return s.Acquire(ctx, 1) }
			unlock = s.Post
		case "sysv-sem":
			id, _ := strconv.Atoi(os.Getenv("IPCCHAN_SEM"))
			c := endpoints.SemSetByID(id, 1).Counter(0)
			lock = func() error { return c.Acquire(ctx, 1) }
			unlock = func() error { c.Release(1); return nil }
		case "flock", "ofd":
			k := endpoints.Flock
			if kind == "ofd" {
				k = endpoints.OFDLocks
			}
			l, err := endpoints.OpenLock(path+".lock", k)
			if err != nil {
				return err
			}
			defer l.Close()
			lock = func() error { return l.Lock(ctx) }
			unlock = l.Unlock
		default:
			return fmt.Errorf("unknown primitive %q", kind)
		}
		for range 200 {
			if err := lock(); err != nil {
				return err
			}
			b, _ := os.ReadFile(path)
			n, _ := strconv.Atoi(string(b))
			os.WriteFile(path, []byte(strconv.Itoa(n+1)), 0o600)
			if err := unlock(); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestSyncPrimitivesExcludeAcrossProcesses(t *testing.T) {
	for _, kind := range []string{"posix-sem", "sysv-sem", "flock", "ofd"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			counter := filepath.Join(dir, "counter")
			os.WriteFile(counter, []byte("0"), 0o600)
			env := []string{"IPCCHAN_COUNTER=" + counter, "IPCCHAN_PRIMITIVE=" + kind}
			switch kind {
			case "posix-sem":
				name := fmt.Sprintf("/ipcchan-test-count-%d", os.Getpid())
				s, err := endpoints.CreateSemaphore(name, 1)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				defer s.Remove()
				env = append(env, "IPCCHAN_SEM="+name)
			case "sysv-sem":
				set, err := endpoints.CreateSemSet(endpoints.IPCPrivate, 1)
				if err != nil {
					t.Fatal(err)
				}
				defer set.Remove()
				set.SetValue(0, 1)
				env = append(env, "IPCCHAN_SEM="+strconv.Itoa(set.ID()))
			}
			var procs []*helperProc
			for range 4 {
				procs = append(procs, startHelper(t, "count-under", env))
			}
			for _, p := range procs {
				if err := p.wait(); err != nil {
					t.Fatal(err)
				}
			}
			if b, _ := os.ReadFile(counter); string(b) != "800" {
				t.Fatalf("counter = %s, want 800", b)
			}
		})
	}
}

func init() {
	// hold-and-hang takes the primitive and waits to be killed.
	childRoles["hold-and-hang"] = func() error {
		ctx := context.Background()
		if id := os.Getenv("IPCCHAN_SEM"); id != "" {
			n, _ := strconv.Atoi(id)
			if err := endpoints.SemSetByID(n, 1).Counter(0).Acquire(ctx, 1); err != nil {
				return err
			}
		} else {
			l, err := endpoints.OpenLock(os.Getenv("IPCCHAN_LOCK"), endpoints.OFDLocks)
			if err != nil {
				return err
			}
			if err := l.Lock(ctx); err != nil {
				return err
			}
		}
		os.Stdout.WriteString("held\n")
		// Until killed. Not select {}: with nothing else to run, a build
		// without cgo (CGO_ENABLED=0, no gcc) ends a blocked process as a
		// deadlock, releasing what it holds.
		for {
			time.Sleep(time.Hour)
		}
	}
}

// A holder killed with SIGKILL releases (SEM_UNDO; the lock's descriptor
// closes) and a waiter proceeds.
func TestSyncKilledHolderReleases(t *testing.T) {
	set, err := endpoints.CreateSemSet(endpoints.IPCPrivate, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Remove()
	set.SetValue(0, 1)
	lockPath := filepath.Join(t.TempDir(), "lock")
	l, err := endpoints.OpenLock(lockPath, endpoints.OFDLocks)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, c := range []struct {
		name    string
		env     string
		acquire func(context.Context) error
	}{
		{"sysv-sem", "IPCCHAN_SEM=" + strconv.Itoa(set.ID()), func(ctx context.Context) error { return set.Counter(0).Acquire(ctx, 1) }},
		{"ofd-lock", "IPCCHAN_LOCK=" + lockPath, l.Lock},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := helperCmd(t, "hold-and-hang", c.env)
			out, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line := make([]byte, 5)
			if _, err := out.Read(line); err != nil || string(line) != "held\n" {
				t.Fatalf("child: %q %v", line, err)
			}
			short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			err := c.acquire(short)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("while the child holds it: %v", err)
			}
			cmd.Process.Kill()
			cmd.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.acquire(ctx); err != nil {
				t.Fatalf("after the holder died: %v", err)
			}
		})
	}
}

// glibc's sem_open/sem_wait/sem_post and ours share one semaphore in both
// directions: a C process and a Go process exclude each other.
func TestPosixSemaphoreWithC(t *testing.T) {
	bin := buildC(t, "sem", `#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
	sem_t *s = sem_open(argv[1], 0);
	if (s == SEM_FAILED) { perror("sem_open"); return 1; }
	for (int i = 0; i < atoi(argv[3]); i++) {
		if (sem_wait(s) != 0) { perror("sem_wait"); return 1; }
		FILE *f = fopen(argv[2], "r+"); int n = 0;
		fscanf(f, "%d", &n); rewind(f); fprintf(f, "%d      ", n + 1); fclose(f);
		sem_post(s);
	}
	return sem_close(s);
}
`, "-pthread")
	dir := t.TempDir()
	name := fmt.Sprintf("/ipcchan-test-c-%d", os.Getpid())
	s, err := endpoints.CreateSemaphore(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer s.Remove()
	counter := filepath.Join(dir, "counter")
	os.WriteFile(counter, []byte("0"), 0o600)
	c := exec.Command(bin, name, counter, "500")
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 500 {
		if err := s.Acquire(ctx, 1); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(counter)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		os.WriteFile(counter, []byte(strconv.Itoa(n+1)+"      "), 0o600)
		s.Release(1)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("C process: %v", err)
	}
	b, _ := os.ReadFile(counter)
	if got := strings.TrimSpace(string(b)); got != "1000" {
		t.Fatalf("counter = %s, want 1000", got)
	}
	if s.Value() != 1 {
		t.Fatalf("value %d at the end, want 1", s.Value())
	}
}

// Compatibility with flock(1) and Python's fcntl.lockf: each excludes and
// is excluded by ours.
func TestFileLocksWithOtherPrograms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	if _, err := exec.LookPath("flock"); err == nil {
		l, _ := endpoints.OpenLock(path, endpoints.Flock)
		defer l.Close()
		if !l.TryLock() {
			t.Fatal("TryLock of a free file failed")
		}
		if exec.Command("flock", "-n", path, "true").Run() == nil {
			t.Error("flock(1) took a file we hold")
		}
		l.Unlock()
		holder := exec.Command("flock", path, "sleep", "0.3")
		holder.Start()
		time.Sleep(100 * time.Millisecond)
		if l.TryLock() {
			t.Error("we took a file flock(1) holds")
		}
		holder.Wait()
		if !l.TryLock() {
			t.Error("the file is not free after flock(1) let go")
		}
		l.Unlock()
	} else {
		t.Log("flock(1) is not installed: skipping its part")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: skipping fcntl.lockf")
	}
	l, _ := endpoints.OpenLock(path, endpoints.OFDLocks)
	defer l.Close()
	l.Lock(context.Background())
	probe := `import fcntl, sys
f = open(sys.argv[1], "r+")
try:
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("took")
except OSError:
    print("refused")`
	out, _ := exec.Command(py, "-c", probe, path).Output()
	if strings.TrimSpace(string(out)) != "refused" {
		t.Errorf("python lockf while we hold an OFD lock: %s", out)
	}
	l.Unlock()
	hold := exec.Command(py, "-c", `import fcntl, sys, time
f = open(sys.argv[1], "r+"); fcntl.lockf(f, fcntl.LOCK_EX); print("held", flush=True); time.sleep(0.3)`, path)
	pout, _ := hold.StdoutPipe()
	hold.Start()
	buf := make([]byte, 5)
	pout.Read(buf)
	if l.TryLock() {
		t.Error("we took a lock python's lockf holds")
	}
	hold.Wait()
	if err := l.Lock(context.Background()); err != nil {
		t.Error(err)
	}
	l.Unlock()
	if err := l.Unlock(); !errors.Is(err, endpoints.ErrNotLocked) {
		t.Errorf("unlocking what is not locked: %v", err)
	}
}

// Semaphores as channels of tokens, in Select, and cancellation that takes
// nothing.
func TestSemaphoreTokens(t *testing.T) {
	m, err := endpoints.NewMemfd("sem", 64)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := endpoints.InitSemaphore(m, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tx, _ := endpoints.SemaphoreSender(s)
	rx, _ := endpoints.SemaphoreReceiver(s)
	defer rx.Close()
	ctx := context.Background()
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	_, err = rx.Recv(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Recv on an empty semaphore = %v", err)
	}
	for range 3 {
		tx.Send(ctx, struct{}{})
	}
	if s.Value() != 3 {
		t.Fatalf("value %d after 3 posts (a cancelled Recv took one?)", s.Value())
	}
	got := 0
	for range 3 {
		if _, err := ipcchan.Select(ctx, ipcchan.OnRecv(rx, func(struct{}) { got++ })); err != nil {
			t.Fatal(err)
		}
	}
	if got != 3 || s.Value() != 0 {
		t.Fatalf("took %d tokens, %d left", got, s.Value())
	}
	if err := s.Post(); err != nil {
		t.Fatal(err)
	}
	if !s.TryAcquire(1) || s.TryAcquire(1) {
		t.Fatal("TryAcquire does not count")
	}
	// Overflow is an error, and a panic through Release, as with Weighted.
	big, _ := endpoints.InitSemaphore(m, 32, 0x7FFFFFFF)
	if err := big.Post(); !errors.Is(err, endpoints.ErrSemOverflow) {
		t.Fatalf("post past SEM_VALUE_MAX: %v", err)
	}
	// A semaphore file of the wrong size is refused.
	os.WriteFile("/dev/shm/sem.ipcchan-test-bad", []byte("short"), 0o600)
	defer os.Remove("/dev/shm/sem.ipcchan-test-bad")
	if _, err := endpoints.OpenSemaphore("/ipcchan-test-bad"); !errors.Is(err, endpoints.ErrMappingSize) {
		t.Fatalf("a 5-byte semaphore file: %v", err)
	}
}

// SemaphoreAt racing the mapping's Close: a clear error (os.ErrClosed, or
// ErrMappingSize for the emptied mapping), never an index-out-of-range
// panic (the length was read, then the memory again); after Close it says
// os.ErrClosed (it said the closed mapping was too small).
func TestSemaphoreAtRacingClose(t *testing.T) {
	for range 200 {
		m, err := endpoints.NewMemfd("semat", 4096)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 50 {
					s, err := endpoints.SemaphoreAt(m, 64)
					switch {
					case err == nil:
						s.TryAcquire(1)
					case errors.Is(err, os.ErrClosed), errors.Is(err, endpoints.ErrMappingSize):
					default:
						t.Errorf("SemaphoreAt during Close: %v", err)
					}
				}
			})
		}
		m.Close()
		wg.Wait()
		if _, err := endpoints.SemaphoreAt(m, 64); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("SemaphoreAt after Close = %v, want os.ErrClosed", err)
		}
	}
}
