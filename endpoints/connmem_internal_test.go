package endpoints

import (
	"errors"
	"os"
	"testing"
)

// The banker's rule: memory is granted only if every holder could still
// finish in turn with what is left.
func TestConnMemoryGrantsOnlySafely(t *testing.T) {
	m := newConnMemory(100)
	a, b, c := m.share(), m.share(), m.share()
	if ok, err := a.try(50, 80, nil); !ok || err != nil {
		t.Fatalf("a's first 50 of 80: %v, %v", ok, err)
	}
	// b taking 40 of 60 would leave 10 free: a needs 30 more, b 20.
	woken := 0
	if ok, _ := b.try(40, 60, func() { woken++ }); ok {
		t.Fatal("an unsafe grant")
	}
	// 10 of 60 leaves 40: a can finish (30), then b (50 with a's 80 back).
	if ok, _ := b.try(10, 60, nil); !ok {
		t.Fatal("a safe grant refused")
	}
	if woken != 0 {
		t.Fatal("b's earlier wait was woken by its own grant")
	}
	if ok, _ := c.try(45, 45, func() { woken++ }); ok {
		t.Fatal("more than the limit granted")
	}
	a.release(0)
	if woken != 1 {
		t.Fatalf("a release woke %d waiters, want 1", woken)
	}
	if ok, _ := c.try(45, 45, nil); !ok {
		t.Fatal("refused after a release")
	}
	if m.used != 55 {
		t.Fatalf("used %d, want 55", m.used)
	}
	// Closing gives everything back and wakes a wait on the share itself.
	c.try(100, 100, func() { woken++ })
	c.close()
	if woken != 2 || m.used != 10 {
		t.Fatalf("after close: %d woken, %d used", woken, m.used)
	}
	if _, err := c.try(1, 1, nil); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("try after close: %v", err)
	}
}
