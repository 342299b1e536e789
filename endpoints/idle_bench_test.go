package endpoints_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// BenchmarkIdleCPU measures what a receiver that waits for nothing costs:
// the CPU time this whole process uses, as a percentage of one core, while
// receivers (or a Select) are parked on endpoints nobody sends on. Each op
// is idleWindow of wall time; run it with -benchtime 100x or more for a
// figure worth quoting (the kernel updates CPU clocks per scheduler tick).
// "none" is the process with nothing parked: the runtime's own background
// work, the floor for the others.
func BenchmarkIdleCPU(b *testing.B) {
	for _, c := range []struct {
		name string
		park func(b *testing.B, ctx context.Context) []func()
	}{
		{"none", func(*testing.B, context.Context) []func() { return nil }},
		{"ring", func(b *testing.B, ctx context.Context) []func() {
			return []func(){recvUntilDone(ctx, idleRing(b))}
		}},
		{"ring-named", func(b *testing.B, ctx context.Context) []func() {
			_, rx := idleNamedRing(b)
			return []func(){recvUntilDone(ctx, rx)}
		}},
		{"pipe", func(b *testing.B, ctx context.Context) []func() {
			return []func(){recvUntilDone(ctx, idlePipe(b))}
		}},
		{"ring-sender-full", func(b *testing.B, ctx context.Context) []func() {
			tx, rx, err := endpoints.RingPair[int64](256 + 4096)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { tx.Close(); rx.Close() })
			return []func(){sendUntilDone(b, ctx, tx)}
		}},
		{"ring-named-sender-full", func(b *testing.B, ctx context.Context) []func() {
			tx, _ := idleNamedRing(b)
			return []func(){sendUntilDone(b, ctx, tx)}
		}},
		{"select-ring+pipe", func(b *testing.B, ctx context.Context) []func() {
			return []func(){selectUntilDone(ctx, idleRing(b), idlePipe(b))}
		}},
		{"select-ring-named", func(b *testing.B, ctx context.Context) []func() {
			_, rx := idleNamedRing(b)
			return []func(){selectUntilDone(ctx, rx)}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			waits := c.park(b, ctx)
			defer func() {
				cancel()
				for _, wait := range waits {
					wait()
				}
			}()
			time.Sleep(idleSettle) // past every spin budget: parked for good
			start := processCPUTime()
			b.ResetTimer()
			time.Sleep(time.Duration(b.N) * idleWindow)
			b.StopTimer()
			used := processCPUTime() - start
			b.ReportMetric(100*float64(used)/float64(time.Duration(b.N)*idleWindow), "cpu-%")
		})
	}
}

const (
	idleWindow = 10 * time.Millisecond
	idleSettle = 50 * time.Millisecond
)

// recvUntilDone parks a Recv on rx until ctx ends, and returns the function
// that waits for it to return.
func recvUntilDone(ctx context.Context, rx *ipcchan.Receiver[int64]) func() {
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := rx.Recv(ctx); !errors.Is(err, context.Canceled) {
			panic(err)
		}
	})
	return wg.Wait
}

// sendUntilDone fills tx, then parks a Send on it until ctx ends.
func sendUntilDone(b *testing.B, ctx context.Context, tx *ipcchan.Sender[int64]) func() {
	for {
		if err := tx.TrySend(1); errors.Is(err, ipcchan.ErrWouldBlock) {
			break
		} else if err != nil {
			b.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := tx.Send(ctx, 1); !errors.Is(err, context.Canceled) {
			panic(err)
		}
	})
	return wg.Wait
}

// selectUntilDone parks a Select over rxs until ctx ends.
func selectUntilDone(ctx context.Context, rxs ...*ipcchan.Receiver[int64]) func() {
	var cases []ipcchan.Case
	for _, rx := range rxs {
		cases = append(cases, ipcchan.OnRecv(rx, func(int64) {}))
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := ipcchan.Select(ctx, cases...); !errors.Is(err, context.Canceled) {
			panic(err)
		}
	})
	return wg.Wait
}

// idleRing is the receiving end of a RingPair ring (doorbells: parks on
// an eventfd).
func idleRing(b *testing.B) *ipcchan.Receiver[int64] {
	tx, rx, err := endpoints.RingPair[int64](256 + 4096)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Close(); rx.Close() })
	return rx
}

// idleNamedRing returns the ends of a ring in named POSIX shared memory
// (no doorbells: they park on a futex; a Select polls them).
func idleNamedRing(b *testing.B) (*ipcchan.Sender[int64], *ipcchan.Receiver[int64]) {
	m, err := endpoints.CreateShm(endpoints.ObjectName("idle-ring"), 256+4096)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(); m.Remove() })
	if err := endpoints.FormatRing(m); err != nil {
		b.Fatal(err)
	}
	tx, err := endpoints.RingSender[int64](m)
	if err != nil {
		b.Fatal(err)
	}
	rx, err := endpoints.RingReceiver[int64](m)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Close(); rx.Close() })
	return tx, rx
}

func idlePipe(b *testing.B) *ipcchan.Receiver[int64] {
	tx, rx, err := endpoints.PipePair[int64]()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tx.Close(); rx.Close() })
	return rx
}

// processCPUTime is the CPU time this process has used, every thread.
func processCPUTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		panic(os.NewSyscallError("clock_gettime", err))
	}
	return time.Duration(ts.Nano())
}
