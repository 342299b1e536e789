package endpoints_test

import (
	"context"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// A token channel's Recv of a token that is there, and its Send, allocate
// nothing: Recv takes the token before it sets up a cancellable wait (it
// made a context, a cancel func and a map entry per token).
func TestSemaphoreTokenRecvAllocs(t *testing.T) {
	m, err := endpoints.NewMemfd("tokallocs", 64)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := endpoints.InitSemaphore(m, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := endpoints.SemaphoreSender(s)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx, err := endpoints.SemaphoreReceiver(s)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := rx.Recv(ctx); err != nil {
			failed = err
		}
		if err := tx.Send(ctx, struct{}{}); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Fatalf("Recv+Send of a token: %v allocations, want 0", allocs)
	}
}

// The uncontended calls on a semaphore whose memory a peer shrank, with
// nothing asleep on it: the first touch (a TryAcquire, a Post or an
// Acquire that would take at once) faults, and that call and every later
// one fail with an error wrapping ErrCorrupt, or report false: the fast
// paths run under the fault guard.
func TestSemaphoreFastPathsSurviveShrinkingPeer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := context.Background()
	first := map[string]func(t *testing.T, s *endpoints.Semaphore){
		"TryAcquire": func(t *testing.T, s *endpoints.Semaphore) {
			if s.TryAcquire(1) {
				t.Fatal("TryAcquire took a token from memory that is gone")
			}
		},
		"Acquire": func(t *testing.T, s *endpoints.Semaphore) { wantGone(t, "Acquire", s.Acquire(ctx, 1)) },
		"Post":    func(t *testing.T, s *endpoints.Semaphore) { wantGone(t, "Post", s.Post()) },
		"Release": func(t *testing.T, s *endpoints.Semaphore) { s.Release(1) },
	}
	check := func(t *testing.T, s *endpoints.Semaphore, shrink func() string, touch func(*testing.T, *endpoints.Semaphore)) {
		if err := s.Acquire(ctx, 1); err != nil { // the fast path, while the memory is there
			t.Fatal(err)
		}
		s.Release(1)
		if out := shrink(); out != "ok" {
			t.Fatalf("the peer could not shrink the semaphore's memory: %s", out)
		}
		touch(t, s)
		wantGone(t, "Acquire", s.Acquire(ctx, 1))
		wantGone(t, "Post", s.Post())
		if s.TryAcquire(1) {
			t.Fatal("TryAcquire took a token from memory that is gone")
		}
		if v := s.Value(); v != -1 {
			t.Fatalf("Value = %d, want -1", v)
		}
		s.Release(1) // must neither fault nor panic
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for call, touch := range first {
		for _, kind := range shrinkables {
			t.Run(call+"/"+kind.name, func(t *testing.T) {
				m, shrink := kind.make(t, 4096)
				s, err := endpoints.InitSemaphore(m, 64, 5)
				if err != nil {
					t.Fatal(err)
				}
				check(t, s, shrink, touch)
			})
		}
		t.Run(call+"/named", func(t *testing.T) {
			name := endpoints.ObjectName("fault-sem")
			s, err := endpoints.CreateSemaphore(name, 5)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Remove()
			check(t, s, func() string {
				return shrinkByPeer(t, "path", nil, "MAPFAULT_PATH=/dev/shm/sem."+name[1:])
			}, touch)
		})
	}
}
