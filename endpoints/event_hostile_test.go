package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// The event's words, at the offsets PROTOCOL.md §14 gives.
const (
	evState   = 64
	evWaiters = 68
	evCount   = 72
	evBits    = 80
)

// TestEventOpenValidates: an event is opened only on a header that says
// it is one, at an offset where it fits.
func TestEventOpenValidates(t *testing.T) {
	ipcchantest.CheckFDs(t)
	m, err := endpoints.NewMemfd("event-hostile", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	mem := m.Bytes()
	if _, err := endpoints.OpenEventIn(m, 256); !errors.Is(err, endpoints.ErrCorrupt) {
		t.Fatalf("open on zeros: %v, want ErrCorrupt", err)
	}
	for _, off := range []int{-8, 4, 4096 - 64, 4096} {
		if err := endpoints.FormatEvent(m, off); !errors.Is(err, endpoints.ErrMappingSize) {
			t.Errorf("FormatEvent at %d: %v, want ErrMappingSize", off, err)
		}
		if _, err := endpoints.OpenEventIn(m, off); !errors.Is(err, endpoints.ErrMappingSize) {
			t.Errorf("OpenEventIn at %d: %v, want ErrMappingSize", off, err)
		}
	}
	if err := endpoints.FormatEvent(m, 256); err != nil {
		t.Fatal(err)
	}
	ev := mem[256:]
	for _, c := range []struct {
		name string
		off  int
		val  uint32
	}{{"magic", 0, 0x41414141}, {"version", 8, 2}, {"size", 12, 64}} {
		old := binary.NativeEndian.Uint32(ev[c.off:])
		binary.NativeEndian.PutUint32(ev[c.off:], c.val)
		if e, err := endpoints.OpenEventIn(m, 256); !errors.Is(err, endpoints.ErrCorrupt) {
			if e != nil {
				e.Close()
			}
			t.Errorf("open with a bad %s: %v, want ErrCorrupt", c.name, err)
		}
		binary.NativeEndian.PutUint32(ev[c.off:], old)
	}
	e, err := endpoints.OpenEventIn(m, 256)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.Set(); err != nil || !e.IsSet() {
		t.Fatalf("Set: %v", err)
	}
	if atomic.LoadUint32(word32(m, 256+evState))&1 == 0 {
		t.Fatal("the flag is not bit 0 of state")
	}
}

// TestEventScribbledWords: a peer that writes anything over the event's
// words, or changes state without the wake PROTOCOL.md §14 asks for,
// makes waiters wake for nothing or late (the 100 ms recheck), never
// hang or crash.
func TestEventScribbledWords(t *testing.T) {
	ipcchantest.CheckFDs(t)
	m, err := endpoints.NewMemfd("event-scribble", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := endpoints.FormatEvent(m, 0); err != nil {
		t.Fatal(err)
	}
	ev, err := endpoints.OpenEventIn(m, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	mem := m.Bytes()
	ctx := eventCtx(t)

	// A set made behind the waiters' back: the state changes, nobody is
	// woken. The parked waiter finds it at its recheck.
	done := make(chan error, 1)
	go func() { done <- ev.Wait(ctx) }()
	waitWaiting(t, ev, 1)
	waitParked(t, os.Getpid())
	atomic.StoreUint32(word32(m, evWaiters), 0) // the announcement wiped
	atomic.AddUint32(word32(m, evState), 3)     // set, with a new change count
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Garbage in every word: the calls still work on what they find.
	for _, v := range []uint64{0, 1, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 0x8000000000000001} {
		for _, off := range []int{evState, evWaiters} {
			atomic.StoreUint32(word32(m, off), uint32(v))
		}
		for _, off := range []int{evCount, evBits} {
			atomic.StoreUint64((*uint64)(unsafe.Pointer(&mem[off])), v)
		}
		if err := ev.Clear(); err != nil {
			t.Fatal(err)
		}
		c, _ := ev.Count()
		go func() { _, err := ev.WaitCount(ctx, c); done <- err }()
		waitWaiting(t, ev, 1)
		if _, err := ev.Notify(1); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := ev.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := ev.Take(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEventTruncated: a peer that truncates a named event's object makes
// every call return an error wrapping ErrCorrupt — a parked Wait too, at
// its recheck — instead of the fault killing the process.
func TestEventTruncated(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := endpoints.ObjectName("event-truncated")
	ev, err := endpoints.CreateEvent(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	defer ev.Remove()
	ctx := eventCtx(t)
	done := make(chan error, 1)
	go func() { done <- ev.Wait(ctx) }()
	waitWaiting(t, ev, 1)
	waitParked(t, os.Getpid())
	if err := os.Truncate("/dev/shm"+name, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, endpoints.ErrCorrupt) {
		t.Fatalf("parked Wait on truncated memory: %v, want ErrCorrupt", err)
	}
	if err := ev.Set(); !errors.Is(err, endpoints.ErrCorrupt) {
		t.Fatalf("Set on truncated memory: %v, want ErrCorrupt", err)
	}
	if _, err := ev.Notify(1); !errors.Is(err, endpoints.ErrCorrupt) {
		t.Fatalf("Notify on truncated memory: %v, want ErrCorrupt", err)
	}
	if err := ev.Wait(context.Background()); !errors.Is(err, endpoints.ErrCorrupt) {
		t.Fatalf("Wait on truncated memory: %v, want ErrCorrupt", err)
	}
	if ev.IsSet() {
		t.Fatal("IsSet on truncated memory: true")
	}
	if _, err := endpoints.OpenEvent(name); err == nil {
		t.Fatal("OpenEvent of an empty object: no error")
	}
}

// TestEventNamedValues: the calls that return a value return it on a
// named event too, whose calls run under the fault guard.
func TestEventNamedValues(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := endpoints.ObjectName("event-values")
	ev, err := endpoints.CreateEvent(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	defer ev.Remove()
	if n, err := ev.Notify(5); n != 5 || err != nil {
		t.Fatalf("Notify(5) = %d, %v", n, err)
	}
	if n, err := ev.Count(); n != 5 || err != nil {
		t.Fatalf("Count = %d, %v", n, err)
	}
	ev.Raise(6)
	if b, err := ev.Take(); b != 6 || err != nil {
		t.Fatalf("Take = %d, %v", b, err)
	}
	if n, err := ev.WaitCount(eventCtx(t), 0); n != 5 || err != nil {
		t.Fatalf("WaitCount = %d, %v", n, err)
	}
}

// TestEventInMappings: an event beside other state in each kind of
// mapping — a SysV segment, a file, POSIX shared memory — opened twice
// (two handles, as two processes would have): a Wait on one handle is
// woken by a Set on the other.
func TestEventInMappings(t *testing.T) {
	ipcchantest.CheckFDs(t)
	kinds := []struct {
		name string
		make func(t *testing.T) *endpoints.Mapping
	}{
		{"sysv", func(t *testing.T) *endpoints.Mapping {
			m, err := endpoints.CreateSysVShm(endpoints.ObjectKey(), 4096)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}},
		{"file", func(t *testing.T) *endpoints.Mapping {
			m, err := endpoints.CreateFileMapping(t.TempDir()+"/state", 4096)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}},
		{"shm", func(t *testing.T) *endpoints.Mapping {
			m, err := endpoints.CreateShm(endpoints.ObjectName("event-in"), 4096)
			if err != nil {
				t.Fatal(err)
			}
			return m
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			m := k.make(t)
			defer m.Close()
			defer m.Remove()
			if err := endpoints.FormatEvent(m, 1024); err != nil {
				t.Fatal(err)
			}
			a, err := endpoints.OpenEventIn(m, 1024)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, err := endpoints.OpenEventIn(m, 1024)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			ctx := eventCtx(t)
			done := make(chan error, 1)
			go func() { done <- a.Wait(ctx) }()
			waitWaiting(t, a, 1)
			if err := b.Set(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if m.Bytes()[1024+evState]&1 == 0 {
				t.Fatal("the flag is not in the caller's mapping at the offset given")
			}
		})
	}
}
