package endpoints_test

import (
	"context"
	"testing"

	"github.com/ipcchan/go/endpoints"
)

// BenchmarkRingSendRecvShm is BenchmarkRingSendRecv over POSIX shared
// memory, which cannot be sealed against shrinking: every ring call runs
// with the fault guard.
func BenchmarkRingSendRecvShm(b *testing.B) {
	m, err := endpoints.CreateShm(endpoints.ObjectName("bench-ring"), 256+1<<16)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	defer m.Remove()
	if err := endpoints.FormatRing(m); err != nil {
		b.Fatal(err)
	}
	tx, err := endpoints.RingSender[[]byte](m)
	if err != nil {
		b.Fatal(err)
	}
	rx, err := endpoints.RingReceiver[[]byte](m)
	if err != nil {
		b.Fatal(err)
	}
	sendRecvBytes(b, tx, rx)
}

// BenchmarkSemaphoreShm measures an uncontended Acquire+Release of a
// semaphore in POSIX shared memory (guarded against faults), beside
// BenchmarkSemaphoreUncontended's memfd one.
func BenchmarkSemaphoreShm(b *testing.B) {
	ctx := context.Background()
	m, err := endpoints.CreateShm(endpoints.ObjectName("bench-sem"), 64)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	defer m.Remove()
	s, err := endpoints.InitSemaphore(m, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if err := s.Acquire(ctx, 1); err != nil {
			b.Fatal(err)
		}
		s.Release(1)
	}
}
