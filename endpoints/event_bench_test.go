package endpoints_test

import (
	"context"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// eventStop is a count an event-echo child stops at.
const eventStop = 1 << 62

func init() {
	// event-echo answers every change of the counter of "ping" with a
	// Notify(1) on "pong", until ping's count reaches eventStop.
	childRoles["event-echo"] = func() error {
		evs, closeAll, err := inheritEvents("ping", "pong")
		if err != nil {
			return err
		}
		defer closeAll()
		ctx := context.Background()
		var seen uint64
		for {
			n, err := evs[0].WaitCount(ctx, seen)
			if err != nil {
				return err
			}
			if n >= eventStop {
				return nil
			}
			seen = n
			if _, err := evs[1].Notify(1); err != nil {
				return err
			}
		}
	}
}

// BenchmarkEventWake measures a set→wake across processes: the parent
// notifies "ping", a child parked on it wakes and notifies "pong", on
// which the parent waits — parked in WaitCount ("wait"), or in a Select
// on a Receiver of pong, through its doorbell ("select"). An op is a
// round trip, two wake-ups of a parked waiter in another process;
// wake-ns is half of it.
func BenchmarkEventWake(b *testing.B) {
	for _, how := range []string{"wait", "select"} {
		b.Run(how, func(b *testing.B) {
			ping, pong := newTestEvent(b), newTestEvent(b)
			p := startHelper(b, "event-echo", nil, endpoints.Share("ping", ping), endpoints.Share("pong", pong))
			rx, err := pong.Receiver()
			if err != nil {
				b.Fatal(err)
			}
			defer rx.Close()
			var got uint64
			onPong := ipcchan.OnRecv(rx, func(n uint64) { got = n })
			ctx := eventCtx(b)
			b.ReportAllocs()
			b.ResetTimer()
			var seen uint64
			for range b.N {
				if _, err := ping.Notify(1); err != nil {
					b.Fatal(err)
				}
				if how == "wait" {
					if got, err = pong.WaitCount(ctx, seen); err != nil {
						b.Fatal(err)
					}
				} else {
					for got == seen {
						if _, err := ipcchan.Select(ctx, onPong); err != nil {
							b.Fatal(err)
						}
					}
				}
				seen = got
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "wake-ns")
			ping.Notify(eventStop)
			if err := p.wait(); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkEventSet measures Set, Notify and Clear with nobody waiting:
// no system call, an atomic compare-and-swap and a load — on a memfd,
// and on a named event, whose memory a peer could truncate (every call
// runs under the fault guard).
func BenchmarkEventSet(b *testing.B) {
	named := func(b *testing.B) *endpoints.Event {
		name := endpoints.ObjectName("event-bench")
		ev, err := endpoints.CreateEvent(name)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ev.Remove(); ev.Close() })
		return ev
	}
	for _, kind := range []struct {
		name string
		make func(*testing.B) *endpoints.Event
	}{{"memfd", func(b *testing.B) *endpoints.Event { return newTestEvent(b) }}, {"named", named}} {
		b.Run(kind.name+"/Set", func(b *testing.B) {
			ev := kind.make(b)
			b.ReportAllocs()
			for range b.N {
				ev.Set()
			}
		})
		b.Run(kind.name+"/Notify", func(b *testing.B) {
			ev := kind.make(b)
			b.ReportAllocs()
			for range b.N {
				ev.Notify(1)
			}
		})
		b.Run(kind.name+"/Clear", func(b *testing.B) {
			ev := kind.make(b)
			b.ReportAllocs()
			for range b.N {
				ev.Clear()
			}
		})
	}
}
