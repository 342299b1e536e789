package clients_test

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"

	"github.com/ipcchan/go/endpoints"
)

// The ring of c/ipcchan.h against Go's, in one run: the same Go end in
// this process, and a child that is either this binary (Go) or
// c/peers/ring_peer.c (C). Compare the sub-benchmarks with benchstat.

// benchRingSize is each ring's size: 1 MiB of data.
const benchRingSize = 256 + 1<<20

// BenchmarkRingRoundTrip measures a 64-byte record's round trip over two
// RingPair rings. ping/go-go and ping/go-c: this process sends and waits
// for the echo of a Go child or a C child (ring_peer echo). echo/go-go and
// echo/c-go: a Go or a C child (ring_peer ping) sends, and this process
// echoes.
func BenchmarkRingRoundTrip(b *testing.B) {
	for _, child := range []string{"go", "c"} {
		b.Run("ping/go-"+child, func(b *testing.B) {
			toChild, in, err := endpoints.RingPair[[]byte](benchRingSize)
			if err != nil {
				b.Fatal(err)
			}
			out, fromChild, err := endpoints.RingPair[[]byte](benchRingSize)
			if err != nil {
				b.Fatal(err)
			}
			ends := []endpoints.Handed{endpoints.Pass("in", in), endpoints.Pass("out", out)}
			var p *peer
			if child == "go" {
				p = goRing(b, "echo", nil, ends...)
			} else {
				p = cRing(b, cProgram(b, "ring_peer"), []string{"echo", "inherit:in", "-out", "inherit:out"}, ends...)
			}
			ctx := context.Background()
			msg, buf := make([]byte, 64), make([]byte, 0, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := toChild.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
				if err := fromChild.RecvInto(ctx, &buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			toChild.Close()
			if err := fromChild.RecvInto(ctx, &buf); err != io.EOF {
				b.Fatalf("after the echoes: %v", err)
			}
			fromChild.Close()
			p.wait(true)
		})
	}
	for _, child := range []string{"go", "c"} {
		b.Run("echo/"+child+"-go", func(b *testing.B) {
			toChild, in, err := endpoints.RingPair[[]byte](benchRingSize)
			if err != nil {
				b.Fatal(err)
			}
			out, fromChild, err := endpoints.RingPair[[]byte](benchRingSize)
			if err != nil {
				b.Fatal(err)
			}
			ends := []endpoints.Handed{endpoints.Pass("in", in), endpoints.Pass("out", out)}
			var p *peer
			if child == "go" {
				p = goRing(b, "ping", []string{envRingN + "=" + strconv.Itoa(b.N)}, ends...)
			} else {
				p = cRing(b, cProgram(b, "ring_peer"), []string{"ping", "inherit:in", "-out", "inherit:out", "-n", strconv.Itoa(b.N), "-size", "64", "-wait-line"}, ends...)
			}
			p.expect("ready")
			ctx := context.Background()
			var buf []byte
			b.ReportAllocs()
			b.ResetTimer()
			fmt.Fprintln(p.in, "go")
			for {
				err := fromChild.RecvInto(ctx, &buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if err := toChild.Send(ctx, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			p.expect("done")
			toChild.Close()
			fromChild.Close()
			p.wait(true)
		})
	}
}

// BenchmarkRingThroughput measures one-way 64-byte records over a RingPair
// ring: send/go-go and send/go-c from this process to a Go or a C child
// that takes them all (ring_peer sink); recv/go-go and recv/c-go from a Go
// or a C child (ring_peer write) to this process.
func BenchmarkRingThroughput(b *testing.B) {
	for _, child := range []string{"go", "c"} {
		b.Run("send/go-"+child, func(b *testing.B) {
			tx, rx, err := endpoints.RingPair[[]byte](benchRingSize)
			if err != nil {
				b.Fatal(err)
			}
			var p *peer
			if child == "go" {
				p = goRing(b, "sink", nil, endpoints.Pass("in", rx))
			} else {
				p = cRing(b, cProgram(b, "ring_peer"), []string{"sink", "inherit:in"}, endpoints.Pass("in", rx))
			}
			ctx := context.Background()
			msg := make([]byte, 64)
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := tx.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
			}
			if err := tx.Close(); err != nil {
				b.Fatal(err)
			}
			p.expect(strconv.Itoa(b.N))
			b.StopTimer()
			p.wait(true)
		})
	}
	for _, child := range []string{"go", "c"} {
		b.Run("recv/"+child+"-go", func(b *testing.B) {
			tx, rx, err := endpoints.RingPair[[]byte](benchRingSize)
			if err != nil {
				b.Fatal(err)
			}
			defer rx.Close()
			var p *peer
			if child == "go" {
				p = goRing(b, "source", []string{envRingN + "=" + strconv.Itoa(b.N)}, endpoints.Pass("out", tx))
			} else {
				p = cRing(b, cProgram(b, "ring_peer"), []string{"write", "inherit:out", "-n", strconv.Itoa(b.N), "-size", "64", "-wait-line"}, endpoints.Pass("out", tx))
			}
			p.expect("ready")
			ctx := context.Background()
			var buf []byte
			b.SetBytes(64)
			b.ReportAllocs()
			b.ResetTimer()
			fmt.Fprintln(p.in, "go")
			n := 0
			for {
				err := rx.RecvInto(ctx, &buf)
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.StopTimer()
			if n != b.N {
				b.Fatalf("%d records; want %d", n, b.N)
			}
			p.expect("done")
			p.wait(true)
		})
	}
}
