package endpoints

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// spinNosplit marks entered, spins n rounds, then marks done: like the
// semaphore's fast paths, a nosplit function that calls nothing but
// atomics.
//
//go:nosplit
//go:noinline
func spinNosplit(entered, done *atomic.Int32, n int) {
	entered.Store(1)
	for i := 0; i < n; i++ {
		entered.Add(0)
	}
	done.Store(1)
}

// The premise of the semaphore's fast paths (semfast.go): quiesce does not
// return while a goroutine is inside a nosplit function, so that Mapping's
// Close cannot unmap memory a fast path is touching.
func TestQuiesceWaitsForNosplit(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("needs two Ps: the spinner keeps its own")
	}
	if raceBuild {
		t.Skip("the race detector makes atomics calls the scheduler may stop at; the fast paths are off")
	}
	for round := range 5 {
		var entered, done atomic.Int32
		go spinNosplit(&entered, &done, 20_000_000)
		deadline := time.Now().Add(time.Minute)
		for entered.Load() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the spinner never started")
			}
			runtime.Gosched()
		}
		quiesce()
		if done.Load() == 0 {
			t.Fatalf("round %d: quiesce returned while a goroutine was inside a nosplit function", round)
		}
	}
}

// The fast paths are on (but under the race detector) for semaphores in
// every kind of mapping, and refuse a closed semaphore or mapping.
func TestSemaphoreFastPathChoice(t *testing.T) {
	m, err := NewMemfd("fast", 64)
	if err != nil {
		t.Fatal(err)
	}
	s, err := InitSemaphore(m, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if s.fast == raceBuild || m.unguarded.Load() == raceBuild {
		t.Fatalf("a semaphore in a sealed memfd: fast path %v, want %v", s.fast, !raceBuild)
	}
	if !s.fastTake(1) || s.fastTake(1) || !s.fastAdd(1) {
		t.Fatal("fastTake/fastAdd on an open semaphore of 1")
	}
	s2, _ := SemaphoreAt(m, 0)
	s2.Close()
	if s2.fastTake(1) || s2.fastAdd(1) {
		t.Fatal("the fast path ran on a closed Semaphore")
	}
	m.Close()
	if s.fastTake(1) || s.fastAdd(1) {
		t.Fatal("the fast path ran on a closed mapping")
	}
	if err := s.Acquire(context.Background(), 1); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Acquire after the mapping closed: %v, want os.ErrClosed", err)
	}

	f, err := CreateFileMapping(t.TempDir()+"/sem", 64)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	g, err := InitSemaphore(f, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if g.fast == raceBuild || !f.guard {
		t.Fatalf("a semaphore in a file mapping: fast path %v (want %v), fault guard %v (want true)", g.fast, !raceBuild, f.guard)
	}
	if !g.take(1) || g.take(1) || !g.give(1) {
		t.Fatal("take/give on an open semaphore of 1 in a file mapping")
	}
}

// Closing the mapping while goroutines run the fast paths flat out: no
// fault, and every call after the Close fails as documented (Acquire with
// os.ErrClosed).
func TestSemaphoreFastPathUnderMappingClose(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 20 {
		m, err := NewMemfd("fastclose", 64)
		if err != nil {
			t.Fatal(err)
		}
		s, err := InitSemaphore(m, 0, 2)
		if err != nil {
			t.Fatal(err)
		}
		const workers = 4
		warm, errs := make(chan struct{}, workers), make(chan error, workers)
		for w := range workers {
			go func() {
				for i := 0; ; i++ {
					if i == 5000 {
						warm <- struct{}{}
					}
					if w%2 == 0 {
						if err := s.Acquire(ctx, 1); err != nil {
							errs <- err
							return
						}
						s.Release(1)
					} else if s.TryAcquire(1) {
						s.Post()
					} else if s.Value() < 0 {
						errs <- s.Acquire(ctx, 1)
						return
					}
				}
			}()
		}
		for range workers {
			select {
			case <-warm:
			case <-ctx.Done():
				t.Fatal("the workers did not get going")
			}
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
		for range workers {
			select {
			case err := <-errs:
				if !errors.Is(err, os.ErrClosed) {
					t.Fatalf("Acquire after the mapping closed: %v, want os.ErrClosed", err)
				}
			case <-ctx.Done():
				t.Fatal("a worker did not see the Close")
			}
		}
	}
}
