package endpoints_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// monoNow is CLOCK_MONOTONIC in nanoseconds: one clock for every process.
func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func init() {
	// stamp-after-gap takes "in" and "out" rings; for each value from in
	// it waits an idle gap (the value, in microseconds), then sends the
	// monotonic time on out.
	childRoles["stamp-after-gap"] = func() error {
		rx, err := endpoints.InheritReceiver[int64]("in")
		if err != nil {
			return err
		}
		tx, err := endpoints.InheritSender[int64]("out")
		if err != nil {
			return err
		}
		defer tx.Close()
		ctx := context.Background()
		for {
			gap, err := rx.Recv(ctx)
			if err != nil {
				return nil
			}
			time.Sleep(time.Duration(gap) * time.Microsecond)
			if err := tx.Send(ctx, monoNow()); err != nil {
				return err
			}
		}
	}
}

// BenchmarkRingSelectWake measures how soon a receiver parked on an empty
// ring wakes when a child process sends after a 2 ms idle gap: a Select on
// the ring, a Select on the ring and a pipe, and a blocking Recv, in the
// same run. wake-ns is the time from the child's send to the receiver's
// return (one monotonic clock for both processes): its mean, and its
// median and 90th percentile (wake-p50-ns, wake-p90-ns), which a few
// wake-ups delayed by a loaded machine do not move.
func BenchmarkRingSelectWake(b *testing.B) {
	const gap = 2000 // µs
	for _, mode := range []string{"recv", "select", "select+pipe"} {
		b.Run(mode, func(b *testing.B) {
			toChild, in, err := endpoints.RingPair[int64](256 + 4096)
			if err != nil {
				b.Fatal(err)
			}
			out, fromChild, err := endpoints.RingPair[int64](256 + 4096)
			if err != nil {
				b.Fatal(err)
			}
			ptx, prx, err := endpoints.PipePair[int64]()
			if err != nil {
				b.Fatal(err)
			}
			startHelper(b, "stamp-after-gap", nil, endpoints.Pass("in", in), endpoints.Pass("out", out))
			b.Cleanup(func() { toChild.Close(); fromChild.Close(); ptx.Close(); prx.Close() })
			ctx := context.Background()
			var stamp int64
			cases := []ipcchan.Case{ipcchan.OnRecv(fromChild, func(v int64) { stamp = v })}
			if mode == "select+pipe" {
				cases = append(cases, ipcchan.OnRecv(prx, func(int64) {}))
			}
			var total time.Duration
			wakes := make([]int64, 0, b.N)
			b.ResetTimer()
			for range b.N {
				if err := toChild.Send(ctx, gap); err != nil {
					b.Fatal(err)
				}
				if mode == "recv" {
					if stamp, err = fromChild.Recv(ctx); err != nil {
						b.Fatal(err)
					}
				} else if k, err := ipcchan.Select(ctx, cases...); err != nil || k != 0 {
					b.Fatal(k, err)
				}
				wake := monoNow() - stamp
				total += time.Duration(wake)
				wakes = append(wakes, wake)
			}
			b.StopTimer()
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "wake-ns")
			slices.Sort(wakes)
			b.ReportMetric(float64(wakes[len(wakes)/2]), "wake-p50-ns")
			b.ReportMetric(float64(wakes[len(wakes)*9/10]), "wake-p90-ns")
		})
	}
}
