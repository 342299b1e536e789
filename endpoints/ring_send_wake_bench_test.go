package endpoints_test

import (
	"context"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/benchstats"
	"github.com/ipcchan/go/ipcchan"
)

func init() {
	// free-after-gap takes the ring Receiver "data" and the rings "in" and
	// "out": for each value from in it waits an idle gap (the value, in
	// microseconds), takes the monotonic time, receives one record from
	// data (freeing room for a sender waiting on a full ring), and sends
	// the time on out.
	childRoles["free-after-gap"] = func() error {
		data, err := endpoints.InheritReceiver[[]byte]("data")
		if err != nil {
			return err
		}
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
		var buf []byte
		for {
			gap, err := rx.Recv(ctx)
			if err != nil {
				return nil
			}
			time.Sleep(time.Duration(gap) * time.Microsecond)
			t := monoNow()
			if err := data.RecvInto(ctx, &buf); err != nil {
				return err
			}
			if err := tx.Send(ctx, t); err != nil {
				return err
			}
		}
	}
}

// BenchmarkRingSendWake measures how soon a sender waiting for room on a
// full ring wakes when a child process, the ring's reader, frees room after
// a 2 ms idle gap: a blocking Send and a Select with the send case, in the
// same run. The ring holds two records of half its size, so that taking one
// frees half the ring (where the reader rings the writers). wake-ns is the
// time from the child's receive to the sender's return (one monotonic clock
// for both processes); cpu-ns/op the sender process's CPU time per op,
// waiting included.
func BenchmarkRingSendWake(b *testing.B) {
	const gap = 2000 // µs
	for _, mode := range []string{"send", "select"} {
		b.Run(mode, func(b *testing.B) {
			// No linger: the ring is full when the benchmark ends.
			tx, data, err := endpoints.RingPair[[]byte](256+4096, ipcchan.WithLinger(0))
			if err != nil {
				b.Fatal(err)
			}
			toChild, in, err := endpoints.RingPair[int64](256 + 4096)
			if err != nil {
				b.Fatal(err)
			}
			out, fromChild, err := endpoints.RingPair[int64](256 + 4096)
			if err != nil {
				b.Fatal(err)
			}
			startHelper(b, "free-after-gap", nil, endpoints.Pass("data", data), endpoints.Pass("in", in), endpoints.Pass("out", out))
			b.Cleanup(func() { toChild.Close(); fromChild.Close(); tx.Close() })
			ctx := context.Background()
			rec := make([]byte, tx.Transport().MaxMsgSize()-8) // a ring holds two, headers included
			for tx.TrySend(rec) == nil {
			}
			cases := []ipcchan.Case{ipcchan.OnSend(tx, rec, nil)}
			var total time.Duration
			b.ResetTimer()
			cpu := benchstats.StartCPU(0)
			for range b.N {
				if err := toChild.Send(ctx, gap); err != nil {
					b.Fatal(err)
				}
				if mode == "send" {
					if err := tx.Send(ctx, rec); err != nil {
						b.Fatal(err)
					}
				} else if k, err := ipcchan.Select(ctx, cases...); err != nil || k != 0 {
					b.Fatal(k, err)
				}
				woke := monoNow()
				stamp, err := fromChild.Recv(ctx)
				if err != nil {
					b.Fatal(err)
				}
				total += time.Duration(woke - stamp)
			}
			b.StopTimer()
			cpu.Report(b)
			b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "wake-ns")
		})
	}
}
