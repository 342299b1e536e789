package endpoints

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestEventParkBehindWatch: a waiter that read the state before a change,
// and parks after the parked thread (watch) has already woken the waiters
// for that change, is told to look again — it must not wait for the next
// change, which may never come (a lost wake-up).
func TestEventParkBehindWatch(t *testing.T) {
	e, err := NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := e.WaitCount(ctx, 0); done <- err }() // keeps watch running
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.mu.Lock()
		n := e.waiting
		e.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the waiter never parked")
		}
		time.Sleep(time.Millisecond)
	}
	before := atomic.LoadUint32(e.w.state) // what a second waiter read
	if err := e.Set(); err != nil {
		t.Fatal(err)
	}
	for { // watch sees the change and wakes its waiters
		e.mu.Lock()
		seen := e.seen
		e.mu.Unlock()
		if seen != before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watch never saw the Set")
		}
		time.Sleep(time.Millisecond)
	}
	_, current := e.park(before)
	e.unpark()
	if current {
		t.Fatal("park of a waiter behind watch: current, want told to look again")
	}
	e.Notify(1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
