package endpoints_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// BenchmarkBroadcastThroughput measures one-way values from a publisher
// to 1, 2 and 4 subscriber processes that take them all (each must count
// b.N), and beside it, in the same run, a ring's one-way throughput to one
// process: ns/op is the publisher's cost per value, values/s what each
// subscriber receives.
func BenchmarkBroadcastThroughput(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run("ring/"+sizeName(size), func(b *testing.B) {
			tx, in, err := endpoints.RingPair[[]byte](256 + 4<<20)
			if err != nil {
				b.Fatal(err)
			}
			out, ack, err := endpoints.RingPair[[]byte](256 + 4096)
			if err != nil {
				b.Fatal(err)
			}
			startHelper(b, "sink", nil, endpoints.Pass("in", in), endpoints.Pass("out", out))
			b.Cleanup(func() { ack.Close() })
			sendAllAndCount(b, tx, ack, size)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
		})
		for _, subs := range []int{1, 2, 4} {
			b.Run(fmt.Sprintf("broadcast/%s/subs=%d", sizeName(size), subs), func(b *testing.B) {
				benchBroadcast(b, size, subs)
			})
		}
	}
}

// benchBroadcast publishes b.N values of size bytes to subs sink
// processes, lossless, in a 4 MiB data area.
func benchBroadcast(b *testing.B, size, subs int) {
	m, err := endpoints.NewMemfd("bcast-bench", 4096+4<<20)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	pub, err := endpoints.Broadcast[[]byte](m, ipcchan.WithSubscribers(subs))
	if err != nil {
		b.Fatal(err)
	}
	acks := make([]*ipcchan.Receiver[[]byte], subs)
	for i := range acks {
		rx, err := endpoints.Subscribe[[]byte](m)
		if err != nil {
			b.Fatal(err)
		}
		out, ack, err := endpoints.RingPair[[]byte](256 + 4096)
		if err != nil {
			b.Fatal(err)
		}
		startHelper(b, "sink", nil, endpoints.Pass("in", rx), endpoints.Pass("out", out))
		b.Cleanup(func() { ack.Close() })
		acks[i] = ack
	}
	ctx := context.Background()
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := pub.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := pub.Close(); err != nil {
		b.Fatal(err)
	}
	for _, ack := range acks {
		if got, err := ack.Recv(ctx); err != nil || string(got) != strconv.Itoa(b.N) {
			b.Fatalf("a subscriber received %s values (%v), want %d", got, err, b.N)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
}
