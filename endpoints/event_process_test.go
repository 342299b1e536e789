package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// The event tests' children: each inherits the events it names.
const (
	envEventMode   = "EVENT_MODE"   // "wait" or "recv"
	envEventRounds = "EVENT_ROUNDS" // rounds to play
)

func inheritEvents(names ...string) ([]*endpoints.Event, func(), error) {
	// A lost wake-up must show as a timeout, not as a wait for the
	// parked thread's recheck.
	endpoints.SetEventRecheck(eventTimeout)
	var evs []*endpoints.Event
	closeAll := func() {
		for _, ev := range evs {
			ev.Close()
		}
	}
	for _, n := range names {
		ev, err := endpoints.InheritEvent(n)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		evs = append(evs, ev)
	}
	return evs, closeAll, nil
}

func init() {
	// event-waiter counts itself ready on "ack", then plays
	// EVENT_ROUNDS rounds: it waits for "go" to be
	// set (Wait, or a receive from its Receiver), counts the round on
	// "ack" (Notify), and waits for "rel" to count the round before the
	// next one.
	childRoles["event-waiter"] = func() error {
		evs, closeAll, err := inheritEvents("go", "ack", "rel")
		if err != nil {
			return err
		}
		defer closeAll()
		goEv, ack, rel := evs[0], evs[1], evs[2]
		rounds, _ := strconv.Atoi(os.Getenv(envEventRounds))
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		var rx *ipcchan.Receiver[uint64]
		if os.Getenv(envEventMode) == "recv" {
			if rx, err = goEv.Receiver(); err != nil {
				return err
			}
			defer rx.Close()
		}
		if _, err := ack.Notify(1); err != nil { // ready
			return err
		}
		for i := range rounds {
			if rx != nil {
				if _, err := rx.Recv(ctx); err != nil {
					return fmt.Errorf("round %d: %w", i, err)
				}
			} else {
				if err := goEv.Wait(ctx); err != nil {
					return fmt.Errorf("round %d: %w", i, err)
				}
				if !goEv.IsSet() {
					return fmt.Errorf("round %d: Wait returned on a clear event", i)
				}
			}
			if _, err := ack.Notify(1); err != nil {
				return err
			}
			if n, err := rel.WaitCount(ctx, uint64(i)); err != nil || n != uint64(i+1) {
				return fmt.Errorf("round %d: released with count %d, %v", i, n, err)
			}
		}
		return nil
	}

	// event-park counts itself on "ack", waits for "go", and counts
	// itself again.
	childRoles["event-park"] = func() error {
		evs, closeAll, err := inheritEvents("go", "ack")
		if err != nil {
			return err
		}
		defer closeAll()
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		if _, err := evs[1].Notify(1); err != nil {
			return err
		}
		if err := evs[0].Wait(ctx); err != nil {
			return err
		}
		_, err = evs[1].Notify(1)
		return err
	}

	// event-feeder sends 0..99 on the ring "ring", notifying "ev" after
	// every tenth value, then notifies it with 1000 and closes the ring.
	childRoles["event-feeder"] = func() error {
		tx, err := endpoints.InheritSender[int]("ring")
		if err != nil {
			return err
		}
		defer tx.Close()
		ev, err := endpoints.InheritEvent("ev")
		if err != nil {
			return err
		}
		defer ev.Close()
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		for i := range 100 {
			if err := tx.Send(ctx, i); err != nil {
				return err
			}
			if i%10 == 9 {
				if _, err := ev.Notify(1); err != nil {
					return err
				}
			}
		}
		_, err = ev.Notify(1000)
		return err
	}

	// event-mismatch takes an event for a Receiver and a ring for an
	// event: both are refused.
	childRoles["event-mismatch"] = func() error {
		if ev, err := endpoints.InheritEvent("ring"); !errors.Is(err, endpoints.ErrNotInherited) {
			if ev != nil {
				ev.Close()
			}
			return fmt.Errorf("InheritEvent of a ring: %v, want ErrNotInherited", err)
		}
		if rx, err := endpoints.InheritReceiver[uint64]("ev"); !errors.Is(err, endpoints.ErrNotInherited) {
			if rx != nil {
				rx.Close()
			}
			return fmt.Errorf("InheritReceiver of an event: %v, want ErrNotInherited", err)
		}
		return nil
	}

	// event-notify-once adds 7 to the counter of "ev".
	childRoles["event-notify-once"] = func() error {
		ev, err := endpoints.InheritEvent("ev")
		if err != nil {
			return err
		}
		defer ev.Close()
		_, err = ev.Notify(7)
		return err
	}

	// event-named opens the named event EVENT_NAME, waiting for its
	// creation, and adds 5 to its counter.
	childRoles["event-named"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		ev, err := endpoints.OpenEvent(os.Getenv("EVENT_NAME"), ipcchan.WithWaitForCreate(ctx))
		if err != nil {
			return err
		}
		defer ev.Close()
		_, err = ev.Notify(5)
		return err
	}
}

// waitAcks waits until ack's counter reaches n.
func waitAcks(t testing.TB, ctx context.Context, ack *endpoints.Event, n uint64) {
	t.Helper()
	var seen uint64
	for seen < n {
		c, err := ack.WaitCount(ctx, seen)
		if err != nil {
			t.Fatalf("waiting for %d acknowledgements, %d came: %v", n, seen, err)
		}
		seen = c
	}
}

// TestEventWakesAllProcesses: one setter, 8 waiter processes, repeated
// set/clear rounds; every waiter is woken in every round (each counts its
// rounds and the setter waits for all of them: a lost wake-up is a
// timeout). "wait" children use Wait (the setter clears once all are
// through); "pulse" children use a Receiver, and the setter clears right
// after it sets, before anyone could have run.
func TestEventWakesAllProcesses(t *testing.T) {
	for _, mode := range []string{"wait", "pulse"} {
		t.Run(mode, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			const children, rounds = 8, 200
			goEv, ack, rel := newTestEvent(t), newTestEvent(t), newTestEvent(t)
			ctx := eventCtx(t)
			childMode := "wait"
			if mode == "pulse" {
				childMode = "recv"
			}
			env := []string{envEventMode + "=" + childMode, envEventRounds + "=" + strconv.Itoa(rounds)}
			var procs []*helperProc
			for range children {
				procs = append(procs, startHelper(t, "event-waiter", env,
					endpoints.Share("go", goEv), endpoints.Share("ack", ack), endpoints.Share("rel", rel)))
			}
			waitAcks(t, ctx, ack, children) // all ready
			for i := range uint64(rounds) {
				if err := goEv.Set(); err != nil {
					t.Fatal(err)
				}
				if mode == "pulse" {
					goEv.Clear()
				}
				waitAcks(t, ctx, ack, children*(i+2))
				if mode == "wait" {
					goEv.Clear()
				}
				if _, err := rel.Notify(1); err != nil {
					t.Fatal(err)
				}
			}
			for i, p := range procs {
				if err := p.wait(); err != nil {
					t.Errorf("waiter %d: %v", i, err)
				}
			}
		})
	}
}

// TestEventKilledWaiter: a waiter process killed (SIGKILL) while parked
// on the event leaves the others unharmed: the next Set wakes them, and
// the event keeps working.
func TestEventKilledWaiter(t *testing.T) {
	ipcchantest.CheckFDs(t)
	goEv, ack := newTestEvent(t), newTestEvent(t)
	ctx := eventCtx(t)
	var procs []*helperProc
	for range 3 {
		procs = append(procs, startHelper(t, "event-park", nil, endpoints.Share("go", goEv), endpoints.Share("ack", ack)))
	}
	waitAcks(t, ctx, ack, 3)
	for _, p := range procs {
		waitParked(t, p.cmd.Process.Pid)
	}
	if err := procs[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := procs[0].wait(); err == nil {
		t.Fatal("the killed waiter exited cleanly")
	}
	if err := goEv.Set(); err != nil {
		t.Fatal(err)
	}
	waitAcks(t, ctx, ack, 5)
	for i, p := range procs[1:] {
		if err := p.wait(); err != nil {
			t.Errorf("waiter %d: %v", i+1, err)
		}
	}
	// Still an event: clear, set, wait.
	goEv.Clear()
	goEv.Set()
	if err := goEv.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestEventSelectWithRing: a Select with an event case and a ring case,
// fed by another process: every ring value arrives in order, and the
// event's Receiver reports growing counts up to the last Notify's.
func TestEventSelectWithRing(t *testing.T) {
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[int](4096)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ev := newTestEvent(t)
	evRx, err := ev.Receiver()
	if err != nil {
		t.Fatal(err)
	}
	defer evRx.Close()
	p := startHelper(t, "event-feeder", nil, endpoints.Pass("ring", tx), endpoints.Share("ev", ev))
	ctx := eventCtx(t)
	next, last := 0, uint64(0)
	ringCase := ipcchan.OnRecv(rx, func(v int) {
		if v != next {
			t.Errorf("ring value %d, want %d", v, next)
		}
		next++
	})
	evCase := ipcchan.OnRecv(evRx, func(n uint64) {
		if n <= last {
			t.Errorf("event count %d after %d", n, last)
		}
		last = n
	})
	for ringCase != (ipcchan.Case{}) || last != 1010 {
		i, err := ipcchan.Select(ctx, ringCase, evCase)
		switch {
		case i == 0 && err == io.EOF:
			ringCase = ipcchan.Case{} // the ring is done
		case err != nil:
			t.Fatalf("select: case %d: %v (ring at %d, event at %d)", i, err, next, last)
		}
	}
	if next != 100 {
		t.Fatalf("%d ring values", next)
	}
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
	// The Receiver ends with os.ErrClosed once closed.
	evRx.Close()
	if _, err := evRx.Recv(ctx); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Recv after Close: %v", err)
	}
}

// TestEventNamed: an event made by name in one process and opened by
// name in another, which waits for it to be created.
func TestEventNamed(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := endpoints.ObjectName("event")
	p := startHelper(t, "event-named", []string{"EVENT_NAME=" + name})
	ev, err := endpoints.CreateEvent(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	defer ev.Remove()
	n, err := ev.WaitCount(eventCtx(t), 0)
	if err != nil || n != 5 {
		t.Fatalf("WaitCount = %d, %v", n, err)
	}
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := endpoints.CreateEvent(name); !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateEvent of an existing name: %v", err)
	}
}

// TestEventInheritMismatch: a child that takes an event for a channel
// end, or a ring for an event, gets an error wrapping ErrNotInherited.
func TestEventInheritMismatch(t *testing.T) {
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[int](4096)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ev := newTestEvent(t)
	p := startHelper(t, "event-mismatch", nil, endpoints.Share("ring", rx), endpoints.Share("ev", ev))
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
}

// TestEventSelectDoorbell: a Select on an event's Receiver waits on its
// doorbell, polling nothing, and is woken by a Notify from another
// process; a Select waiting when the event is closed returns
// os.ErrClosed.
func TestEventSelectDoorbell(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ev, err := endpoints.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	rx, err := ev.Receiver()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := eventCtx(t)
	type result struct {
		n   uint64
		err error
	}
	selectOnce := func() (chan result, uint64) {
		waits := poller.SelectWaits.Load()
		res := make(chan result, 1)
		go func() {
			var got uint64
			_, err := ipcchan.Select(ctx, ipcchan.OnRecv(rx, func(n uint64) { got = n }))
			res <- result{got, err}
		}()
		for poller.SelectWaits.Load() == waits {
			time.Sleep(time.Millisecond) // no signal says that a Select waits
		}
		waitParked(t, os.Getpid())
		return res, poller.SelectPolls.Load()
	}

	res, polls := selectOnce()
	p := startHelper(t, "event-notify-once", nil, endpoints.Share("ev", ev))
	if r := <-res; r.err != nil || r.n != 7 {
		t.Fatalf("Select = %d, %v; want the count 7", r.n, r.err)
	}
	if n := poller.SelectPolls.Load() - polls; n != 0 {
		t.Errorf("the Select polled %d times: it should wait on the doorbell", n)
	}
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}

	res, _ = selectOnce()
	ev.Close()
	if r := <-res; !errors.Is(r.err, os.ErrClosed) {
		t.Fatalf("Select across the event's Close: %v, want os.ErrClosed", r.err)
	}
}
