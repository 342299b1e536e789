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
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// A hostile peer process shrinks the memory under our mappings. Without a
// defence, our next touch of a page past the new end is a SIGBUS that
// kills the test binary.

func init() {
	// shrink truncates the object on descriptor 3 (MAPFAULT_HOW=fd), the
	// file MAPFAULT_PATH (path), or removes the SysV segment MAPFAULT_ID
	// (sysv-rmid), and prints "ok" or the error.
	childRoles["mapfault-shrink"] = func() error {
		var err error
		switch how := os.Getenv("MAPFAULT_HOW"); how {
		case "fd":
			err = os.NewFile(3, "shared memory").Truncate(0)
		case "path":
			err = os.Truncate(os.Getenv("MAPFAULT_PATH"), 0)
		case "sysv-rmid":
			id, _ := strconv.Atoi(os.Getenv("MAPFAULT_ID"))
			_, err = unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		default:
			return fmt.Errorf("MAPFAULT_HOW=%q", how)
		}
		if err != nil {
			fmt.Print(err)
		} else {
			fmt.Print("ok")
		}
		return nil
	}
}

// shrinkByPeer has a child process shrink the object (see the
// mapfault-shrink role) and returns what it said: "ok", or its error.
func shrinkByPeer(t *testing.T, how string, f *os.File, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envChild+"=mapfault-shrink", "MAPFAULT_HOW="+how), env...)
	cmd.Stderr = os.Stderr
	if f != nil {
		cmd.ExtraFiles = []*os.File{f}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("shrinking peer: %v", err)
	}
	return string(out)
}

// shrinkable is memory a peer can shrink, and how it does it.
type shrinkable struct {
	name string
	make func(t *testing.T, size int) (m *endpoints.Mapping, shrink func() string)
}

// shrinkables are the kinds of mapping that cannot be sealed against
// shrinking: POSIX shared memory, a mapped file, and a memfd made without
// MFD_ALLOW_SEALING (as C's memfd_create(name, 0) makes it).
var shrinkables = []shrinkable{
	{"posix-shm", func(t *testing.T, size int) (*endpoints.Mapping, func() string) {
		name := endpoints.ObjectName("fault")
		m, err := endpoints.CreateShm(name, size)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close(); m.Remove() })
		return m, func() string { return shrinkByPeer(t, "path", nil, "MAPFAULT_PATH=/dev/shm"+name) }
	}},
	{"file", func(t *testing.T, size int) (*endpoints.Mapping, func() string) {
		path := filepath.Join(t.TempDir(), "shared")
		m, err := endpoints.CreateFileMapping(path, size)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m, func() string { return shrinkByPeer(t, "path", nil, "MAPFAULT_PATH="+path) }
	}},
	{"memfd-unsealable", func(t *testing.T, size int) (*endpoints.Mapping, func() string) {
		fd, err := unix.MemfdCreate("unsealable", unix.MFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "memfd")
		t.Cleanup(func() { f.Close() })
		if err := f.Truncate(int64(size)); err != nil {
			t.Fatal(err)
		}
		m, err := endpoints.MappingFromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m, func() string { return shrinkByPeer(t, "fd", f) }
	}},
}

// wantGone checks that err says the memory is gone.
func wantGone(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, endpoints.ErrCorrupt) || !strings.Contains(fmt.Sprint(err), "shrank") {
		t.Fatalf("%s after the peer shrank the memory: %v, want an error wrapping ErrCorrupt that says so", what, err)
	}
}

// word32 returns the uint32 at offset off of m, for watching a ring's or
// semaphore's state from outside (before the memory goes).
func word32(m *endpoints.Mapping, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&m.Bytes()[off]))
}

// waitFor polls cond, a word in shared memory the code under test sets,
// for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

const (
	ringRWait = 192 // offsets of the ring's futex words (ring_layout.go)
	ringWWait = 196
)

// A ring end on memory a peer shrinks returns an error wrapping
// ErrCorrupt from then on, on the receiving and the sending side, whether
// the call was running or parked when the memory went, and Close still
// works.
func TestRingSurvivesShrinkingPeer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, kind := range shrinkables {
		open := func(t *testing.T) (*ipcchan.Sender[string], *ipcchan.Receiver[string], *endpoints.Mapping, func() string) {
			m, shrink := kind.make(t, 256+4096)
			if err := endpoints.FormatRing(m); err != nil {
				t.Fatal(err)
			}
			tx, err := endpoints.RingSender[string](m)
			if err != nil {
				t.Fatal(err)
			}
			rx, err := endpoints.RingReceiver[string](m)
			if err != nil {
				t.Fatal(err)
			}
			return tx, rx, m, func() string {
				if got := shrink(); got != "ok" {
					t.Fatalf("the peer could not shrink the %s: %s", kind.name, got)
				}
				return "ok"
			}
		}
		ctx := context.Background()
		t.Run(kind.name+"/receiver", func(t *testing.T) {
			tx, rx, _, shrink := open(t)
			defer tx.Close()
			if err := tx.Send(ctx, "lost"); err != nil {
				t.Fatal(err)
			}
			shrink()
			_, err := rx.Recv(ctx)
			wantGone(t, "Recv", err)
			_, again := rx.Recv(ctx)
			if again == nil || again.Error() != err.Error() {
				t.Fatalf("second Recv: %v, want the same error again", again)
			}
			_, err = rx.TryRecv()
			wantGone(t, "TryRecv", err)
			if err := rx.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
		t.Run(kind.name+"/sender", func(t *testing.T) {
			tx, rx, _, shrink := open(t)
			defer rx.Close()
			shrink()
			wantGone(t, "Send", tx.Send(ctx, "x"))
			wantGone(t, "TrySend", tx.TrySend("x"))
			if err := tx.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
		t.Run(kind.name+"/sender-close", func(t *testing.T) {
			// Close's end-of-stream record is the first touch.
			tx, rx, _, shrink := open(t)
			defer rx.Close()
			shrink()
			wantGone(t, "Close", tx.Close())
		})
		t.Run(kind.name+"/zero-copy", func(t *testing.T) {
			tx, rx, _, shrink := open(t)
			defer tx.Close()
			defer rx.Close()
			sent := tx.SendRaw(ctx, 1, 8, func(room []byte) (int, error) {
				shrink() // the memory goes while fill writes to it
				copy(room, "in place")
				return 8, nil
			})
			wantGone(t, "SendRaw", sent)
			err := tx.SendRaw(ctx, 1, 8, func(room []byte) (int, error) { return 0, nil })
			wantGone(t, "SendRaw after", err)
			err = rx.RecvRaw(ctx, func(uint32, []byte) error { return nil })
			wantGone(t, "RecvRaw", err)
		})
		t.Run(kind.name+"/parked-receiver", func(t *testing.T) {
			tx, rx, m, shrink := open(t)
			defer tx.Close()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			got := make(chan error, 1)
			go func() { _, err := rx.Recv(ctx); got <- err }()
			rwait := word32(m, ringRWait)
			waitFor(t, "the receiver parks", func() bool { return atomic.LoadUint32(rwait) == 1 })
			shrink()
			// Interrupting the wait touches the futex word, which is gone.
			cancel()
			select {
			case err := <-got:
				wantGone(t, "a parked Recv", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the parked Recv did not return")
			}
			if err := rx.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
		t.Run(kind.name+"/parked-sender", func(t *testing.T) {
			tx, rx, m, shrink := open(t)
			defer rx.Close()
			for tx.TrySend("fill") == nil {
			}
			got := make(chan error, 1)
			go func() { got <- tx.Send(ctx, "blocked") }()
			wwait := word32(m, ringWWait)
			waitFor(t, "the sender parks", func() bool { return atomic.LoadUint32(wwait) == 1 })
			shrink()
			select {
			case err := <-got:
				wantGone(t, "a parked Send", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the parked Send did not return")
			}
			if err := tx.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// The memfds behind RingPair, and any memfd that allows sealing mapped
// with MappingFromFile, are sealed against shrinking: the peer's truncate
// fails with EPERM and the ring goes on working.
func TestRingMemfdIsSealed(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := context.Background()
	check := func(t *testing.T, tx *ipcchan.Sender[string], rx *ipcchan.Receiver[string]) {
		f, err := rx.File()
		if err != nil {
			t.Fatal(err)
		}
		got := shrinkByPeer(t, "fd", f)
		f.Close()
		if !strings.HasSuffix(got, unix.EPERM.Error()) {
			t.Fatalf("the peer's truncate of the memfd: %q, want %q (sealed)", got, unix.EPERM.Error())
		}
		if err := tx.Send(ctx, "still here"); err != nil {
			t.Fatal(err)
		}
		if v, err := rx.Recv(ctx); err != nil || v != "still here" {
			t.Fatalf("Recv = %q, %v", v, err)
		}
		tx.Close()
		rx.Close()
	}
	t.Run("RingPair", func(t *testing.T) {
		tx, rx, err := endpoints.RingPair[string](256 + 4096)
		if err != nil {
			t.Fatal(err)
		}
		check(t, tx, rx)
	})
	t.Run("MappingFromFile", func(t *testing.T) {
		// A memfd as another program makes it: sealing allowed, no seal.
		fd, err := unix.MemfdCreate("from-c", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), "memfd")
		defer f.Close()
		if err := f.Truncate(256 + 4096); err != nil {
			t.Fatal(err)
		}
		m, err := endpoints.MappingFromFile(f)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := endpoints.FormatRing(m); err != nil {
			t.Fatal(err)
		}
		tx, err := endpoints.RingSender[string](m)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := endpoints.RingReceiver[string](m)
		if err != nil {
			t.Fatal(err)
		}
		check(t, tx, rx)
	})
}

// A SysV segment cannot shrink, and a peer that removes it (IPC_RMID)
// leaves the memory to those who have it attached: the ring goes on.
func TestRingSurvivesSysVRemoval(t *testing.T) {
	ipcchantest.CheckFDs(t)
	m, err := endpoints.CreateSysVShm(endpoints.ObjectKey(), 256+4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer m.Remove()
	if err := endpoints.FormatRing(m); err != nil {
		t.Fatal(err)
	}
	tx, err := endpoints.RingSender[string](m)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := endpoints.RingReceiver[string](m)
	if err != nil {
		t.Fatal(err)
	}
	if got := shrinkByPeer(t, "sysv-rmid", nil, "MAPFAULT_ID="+strconv.Itoa(m.ID())); got != "ok" {
		t.Fatalf("the peer could not remove the segment: %s", got)
	}
	ctx := context.Background()
	if err := tx.Send(ctx, "after IPC_RMID"); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	if v, err := rx.Recv(ctx); err != nil || v != "after IPC_RMID" {
		t.Fatalf("Recv = %q, %v", v, err)
	}
	if err := rx.Close(); err != nil {
		t.Fatal(err)
	}
}

// A semaphore in memory a peer shrinks fails every operation with an error
// wrapping ErrCorrupt, a waiting Acquire included.
func TestSemaphoreSurvivesShrinkingPeer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := context.Background()
	check := func(t *testing.T, s *endpoints.Semaphore, waiters *uint32, shrink func() string) {
		got := make(chan error, 1)
		go func() { got <- s.Acquire(ctx, 1) }()
		waitFor(t, "the Acquire sleeps", func() bool { return atomic.LoadUint32(waiters) != 0 })
		if out := shrink(); out != "ok" {
			t.Fatalf("the peer could not shrink the semaphore's memory: %s", out)
		}
		select {
		case err := <-got:
			wantGone(t, "a waiting Acquire", err)
		case <-time.After(10 * time.Second):
			t.Fatal("the waiting Acquire did not return")
		}
		wantGone(t, "Acquire", s.Acquire(ctx, 1))
		wantGone(t, "Post", s.Post())
		if s.TryAcquire(1) {
			t.Fatal("TryAcquire took a token from memory that is gone")
		}
		if v := s.Value(); v != -1 {
			t.Fatalf("Value = %d, want -1", v)
		}
		s.Release(1) // must neither fault nor panic
		rx, err := endpoints.SemaphoreReceiver(s)
		if err != nil {
			t.Fatal(err)
		}
		_, err = rx.TryRecv()
		wantGone(t, "a token channel's TryRecv", err)
		rx.Close()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range shrinkables {
		t.Run(kind.name, func(t *testing.T) {
			m, shrink := kind.make(t, 4096)
			s, err := endpoints.InitSemaphore(m, 64, 0)
			if err != nil {
				t.Fatal(err)
			}
			check(t, s, word32(m, 64+4), shrink)
		})
	}
	t.Run("named", func(t *testing.T) {
		name := endpoints.ObjectName("fault-sem")
		s, err := endpoints.CreateSemaphore(name, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Remove()
		// A second mapping of the file, to see the waiter count.
		m, err := endpoints.OpenFileMapping("/dev/shm/sem." + name[1:])
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		waiters := word32(m, 4)
		check(t, s, waiters, func() string {
			return shrinkByPeer(t, "path", nil, "MAPFAULT_PATH=/dev/shm/sem."+name[1:])
		})
	})
}

// View.Update on memory a peer shrank returns an error wrapping
// ErrCorrupt, then and ever after, and so do Load and Store.
func TestViewSurvivesShrinkingPeer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, kind := range shrinkables {
		t.Run(kind.name, func(t *testing.T) {
			m, shrink := kind.make(t, 4096)
			v, err := endpoints.ViewOf[[2]uint64](m, 128)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Store([2]uint64{1, 2}); err != nil {
				t.Fatal(err)
			}
			if out := shrink(); out != "ok" {
				t.Fatalf("the peer could not shrink the memory: %s", out)
			}
			ran := false
			err = v.Update(func(p *[2]uint64) { atomic.AddUint64(&p[0], 1); ran = true })
			wantGone(t, "Update", err)
			if ran {
				t.Fatal("f went on after the fault")
			}
			_, err = v.Load()
			wantGone(t, "Load", err)
			wantGone(t, "Store", v.Store([2]uint64{}))
		})
	}
}

// The fault guard around View.Update's f lets panics other than faults on
// the mapping go on as they are.
func TestViewGuardPassesOtherPanics(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, kind := range shrinkables {
		t.Run(kind.name, func(t *testing.T) {
			m, _ := kind.make(t, 4096)
			v, err := endpoints.ViewOf[[2]uint64](m, 128)
			if err != nil {
				t.Fatal(err)
			}
			func() {
				defer func() {
					if p := recover(); p != "not a fault" {
						t.Fatalf("a panic in f: recovered %v, want it to go on", p)
					}
				}()
				v.Update(func(*[2]uint64) { panic("not a fault") })
			}()
			func() {
				// A fault elsewhere than on the mapping is no peer's doing.
				page, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
				if err != nil {
					t.Fatal(err)
				}
				elsewhere := (*uint64)(unsafe.Pointer(&page[0]))
				unix.Munmap(page)
				defer func() {
					if f, ok := recover().(interface{ Addr() uintptr }); !ok || f.Addr() != uintptr(unsafe.Pointer(elsewhere)) {
						t.Fatal("a fault in f on other memory did not go on as a panic")
					}
				}()
				v.Update(func(p *[2]uint64) { p[0] = *elsewhere })
			}()
			if err := v.Store([2]uint64{1, 2}); err != nil {
				t.Fatalf("Store after the panics: %v", err)
			}
		})
	}
}
