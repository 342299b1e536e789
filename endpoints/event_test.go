package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// eventTimeout bounds every wait of the event tests: a lost wake-up fails
// the test instead of hanging it.
const eventTimeout = 30 * time.Second

func newTestEvent(t testing.TB) *endpoints.Event {
	t.Helper()
	ev, err := endpoints.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Close() })
	return ev
}

func eventCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	t.Cleanup(cancel)
	return ctx
}

// TestEventFlag: multiprocessing.Event's semantics in one process — Wait
// returns at once while set, waits while clear, and a Set then Clear
// still releases a Wait that was waiting.
func TestEventFlag(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ev := newTestEvent(t)
	ctx := eventCtx(t)
	if ev.IsSet() {
		t.Fatal("a new event is set")
	}
	if err := ev.Set(); err != nil {
		t.Fatal(err)
	}
	if !ev.IsSet() {
		t.Fatal("IsSet after Set: false")
	}
	for range 3 {
		if err := ev.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := ev.Clear(); err != nil {
		t.Fatal(err)
	}
	if ev.IsSet() {
		t.Fatal("IsSet after Clear: true")
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	err := ev.Wait(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait on a clear event: %v, want the context's deadline", err)
	}

	// A pulse (Set then Clear at once) releases every parked waiter.
	const waiters = 8
	done := make(chan error, waiters)
	for range waiters {
		go func() { done <- ev.Wait(ctx) }()
	}
	waitWaiting(t, ev, waiters)
	waitParked(t, os.Getpid())
	ev.Set()
	ev.Clear()
	for range waiters {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestEventCounterAndBits: Notify/WaitCount and Raise/Take/WaitTake.
func TestEventCounterAndBits(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ev := newTestEvent(t)
	ctx := eventCtx(t)
	if n, err := ev.Notify(3); n != 3 || err != nil {
		t.Fatalf("Notify(3) = %d, %v", n, err)
	}
	if !ev.IsSet() {
		t.Fatal("Notify did not set the event")
	}
	if n, err := ev.WaitCount(ctx, 0); n != 3 || err != nil {
		t.Fatalf("WaitCount(0) = %d, %v", n, err)
	}
	got := make(chan uint64, 1)
	go func() {
		n, err := ev.WaitCount(ctx, 3)
		if err != nil {
			t.Error(err)
		}
		got <- n
	}()
	waitWaiting(t, ev, 1)
	ev.Notify(4)
	if n := <-got; n != 7 {
		t.Fatalf("WaitCount(3) = %d, want 7", n)
	}
	if c, _ := ev.Count(); c != 7 {
		t.Fatalf("Count = %d", c)
	}

	if err := ev.Raise(1 << 5); err != nil {
		t.Fatal(err)
	}
	ev.Raise(1)
	if b, err := ev.Take(); b != 1<<5|1 || err != nil {
		t.Fatalf("Take = %#x, %v", b, err)
	}
	if b, _ := ev.Take(); b != 0 {
		t.Fatalf("second Take = %#x", b)
	}
	go func() {
		b, err := ev.WaitTake(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	waitWaiting(t, ev, 1)
	ev.Raise(1 << 63)
	if b := <-got; b != 1<<63 {
		t.Fatalf("WaitTake = %#x", b)
	}
}

// TestEventCloseAndCancel: a parked Wait returns ctx.Err() when its
// context ends and os.ErrClosed when the event is closed; calls after
// Close fail with os.ErrClosed.
func TestEventCloseAndCancel(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ev, err := endpoints.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(eventCtx(t))
	done := make(chan error, 2)
	go func() { done <- ev.Wait(ctx) }()
	go func() { _, err := ev.WaitCount(eventCtx(t), 0); done <- err }()
	waitWaiting(t, ev, 2)
	waitParked(t, os.Getpid())
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Wait: %v", err)
	}
	if err := ev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("WaitCount across Close: %v", err)
	}
	if err := ev.Set(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if err := ev.Wait(context.Background()); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if ev.IsSet() {
		t.Fatal("IsSet after Close: true")
	}
	if err := ev.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var zero endpoints.Event
	if err := zero.Set(); err == nil {
		t.Fatal("Set on a zero Event: no error")
	}
	if err := (*endpoints.Event)(nil).Wait(context.Background()); err == nil {
		t.Fatal("Wait on a nil Event: no error")
	}
}

// TestEventManyGoroutines: goroutines waiting in every way while others
// notify, under -race: each WaitCount waiter sees the count only grow and
// reach the end, each Receiver ends with the final count.
func TestEventManyGoroutines(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ev := newTestEvent(t)
	ctx := eventCtx(t)
	const notifiers, each = 4, 250
	const final = notifiers * each
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seen uint64
			for seen != final {
				n, err := ev.WaitCount(ctx, seen)
				if err != nil {
					t.Error(err)
					return
				}
				if n <= seen || n > final {
					t.Errorf("WaitCount(%d) = %d", seen, n)
					return
				}
				seen = n
			}
		}()
	}
	for range 4 {
		rx, err := ev.Receiver()
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rx.Close()
			for {
				n, err := rx.Recv(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				if n == final {
					return
				}
			}
		}()
	}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if err := ev.Wait(ctx); err != nil {
					t.Error(err)
					return
				}
				if n, _ := ev.Count(); n == final {
					return
				}
				ev.Clear()
			}
		}()
	}
	var nw sync.WaitGroup
	for range notifiers {
		nw.Add(1)
		go func() {
			defer nw.Done()
			for range each {
				if _, err := ev.Notify(1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	nw.Wait()
	// The Wait goroutines may have cleared the flag after the last
	// Notify: set it for them.
	ev.Set()
	wg.Wait()
}

// waitWaiting waits until n goroutines of this process wait on ev.
func waitWaiting(t testing.TB, ev *endpoints.Event, n int) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for endpoints.EventWaiting(ev) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines wait on the event, want %d", endpoints.EventWaiting(ev), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitParked waits until a thread of process pid sleeps in a futex wait
// shared between processes (FUTEX_WAIT without FUTEX_PRIVATE_FLAG: the Go
// runtime's own futexes are private), as an event's waiting thread does.
// No signal says that a thread went to sleep: it polls /proc.
func waitParked(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for !inSharedFutexWait(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d never parked on a shared futex", pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// inSharedFutexWait reports whether a thread of pid is in futex(addr,
// FUTEX_WAIT, ...).
func inSharedFutexWait(pid int) bool {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/" + task.Name() + "/syscall")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 2 && f[0] == strconv.Itoa(unix.SYS_FUTEX) && f[2] == "0x0" {
			return true
		}
	}
	return false
}

var _ = syscall.SIGKILL
var _ = ipcchan.ErrPeerGone

// TestEventCloseWhileBusy: Close while goroutines wait (Wait, WaitCount,
// Selects on Receivers) and notify: every call returns — the waits with
// os.ErrClosed — and nothing is left running (goleak, CheckFDs).
func TestEventCloseWhileBusy(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := eventCtx(t)
	for round := range 20 {
		ev, err := endpoints.NewEvent()
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 3 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				for {
					if err := ev.Wait(ctx); err != nil {
						errs <- err
						return
					}
					ev.Clear()
				}
			}()
			go func() {
				defer wg.Done()
				var seen uint64
				for {
					n, err := ev.WaitCount(ctx, seen)
					if err != nil {
						errs <- err
						return
					}
					seen = n
				}
			}()
		}
		var rxs []*ipcchan.Receiver[uint64]
		for range 2 {
			rx, err := ev.Receiver()
			if err != nil {
				t.Fatal(err)
			}
			rxs = append(rxs, rx)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, err := ipcchan.Select(ctx, ipcchan.OnRecv(rx, nil)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := ev.Notify(1); err != nil {
					errs <- err
					return
				}
				if round%2 == 0 {
					ev.Clear()
				}
			}
		}()
		for c, _ := ev.Count(); c < 200; c, _ = ev.Count() {
			runtime.Gosched() // until the notifier is well under way
		}
		if err := ev.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("round %d: a call across Close: %v, want os.ErrClosed", round, err)
			}
		}
		for _, rx := range rxs {
			rx.Close()
		}
	}
}

// TestEventReceiverBadOption: a Receiver refused for an option leaves no
// descriptor open (its doorbell).
func TestEventReceiverBadOption(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ev := newTestEvent(t)
	if rx, err := ev.Receiver(ipcchan.WithPerm(0o644)); err == nil {
		rx.Close()
		t.Fatal("a Receiver with WithPerm: no error")
	}
}
