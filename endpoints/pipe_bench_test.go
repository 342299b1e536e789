package endpoints_test

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/benchstats"
	"github.com/ipcchan/go/ipcchan"
)

var benchSizes = []int{64, 4096, 65536}

func sizeName(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// BenchmarkPipeRoundTrip measures a message sent to a child process over
// one pipe and echoed back over another: through ipcchan Senders and
// Receivers, and with plain os.Pipe reads and writes in the same run.
func BenchmarkPipeRoundTrip(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("ipcchan/"+sizeName(size), func(b *testing.B) { benchRoundTrip(b, size) })
		b.Run("raw/"+sizeName(size), func(b *testing.B) { benchRawRoundTrip(b, size) })
	}
}

// childPipes starts role with two pipes: the child receives on "in" what
// tx sends, and sends on "out" what rx receives; pid is the child's.
func childPipes(b *testing.B, role string) (tx *ipcchan.Sender[[]byte], rx *ipcchan.Receiver[[]byte], pid int) {
	tx, in, err := endpoints.PipePair[[]byte]()
	if err != nil {
		b.Fatal(err)
	}
	out, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		b.Fatal(err)
	}
	p := startHelper(b, role, []string{envEchoLarge + "=1"}, endpoints.Pass("in", in), endpoints.Pass("out", out))
	b.Cleanup(func() { tx.Close(); rx.Close() })
	return tx, rx, p.cmd.Process.Pid
}

func benchRoundTrip(b *testing.B, size int) {
	ctx := context.Background()
	toTx, fromRx, pid := childPipes(b, "echo")
	msg := make([]byte, size)
	var buf []byte
	roundTrip := func() {
		if err := toTx.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if err := fromRx.RecvInto(ctx, &buf); err != nil {
			b.Fatal(err)
		}
	}
	measureRoundTrips(b, size, pid, roundTrip)
}

// rawPipes starts role with two os.Pipe pairs: the child reads fd 3 and
// writes fd 4. It returns the parent's ends.
func rawPipes(b *testing.B, role string, size int) (w, r *os.File, cmd *exec.Cmd) {
	inR, inW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd = helperCmd(b, role, "IPCCHAN_SIZE="+strconv.Itoa(size))
	cmd.ExtraFiles = []*os.File{inR, outW}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { inW.Close(); outR.Close(); cmd.Wait() })
	return inW, outR, cmd
}

func benchRawRoundTrip(b *testing.B, size int) {
	w, r, cmd := rawPipes(b, "raw-echo", size)
	msg := make([]byte, size)
	buf := make([]byte, size)
	roundTrip := func() {
		if _, err := w.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf); err != nil {
			b.Fatal(err)
		}
	}
	measureRoundTrips(b, size, cmd.Process.Pid, roundTrip)
}

// measureRoundTrips times b.N calls of roundTrip, after one untimed call
// that makes sure the peer is up, reporting size bytes per call, and the
// latency percentiles and CPU time per call of this process and of the
// peer process pid (benchstats.TimeRoundTrips).
func measureRoundTrips(b *testing.B, size, pid int, roundTrip func()) {
	roundTrip()
	b.SetBytes(int64(size))
	b.ReportAllocs()
	benchstats.TimeRoundTrips(b, pid, roundTrip)
}

// BenchmarkPipeThroughput measures one-way messages to a child that reads
// them all: through ipcchan (whose Sender batches queued frames into one
// write), and with one plain write per message in the same run.
func BenchmarkPipeThroughput(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("ipcchan/"+sizeName(size), func(b *testing.B) { benchThroughput(b, size) })
		b.Run("raw/"+sizeName(size), func(b *testing.B) { benchRawThroughput(b, size) })
	}
}

func benchThroughput(b *testing.B, size int) {
	tx, ackRx, _ := childPipes(b, "sink")
	sendAllAndCount(b, tx, ackRx, size)
}

// sendAllAndCount is the measured part of a throughput benchmark: b.N
// messages of size bytes through tx, then end of stream, then the count
// the child acknowledges on ack, which must be b.N.
func sendAllAndCount(b *testing.B, tx *ipcchan.Sender[[]byte], ack *ipcchan.Receiver[[]byte], size int) {
	ctx := context.Background()
	msg := make([]byte, size)
	b.SetBytes(int64(size))
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
	got, err := ack.Recv(ctx)
	b.StopTimer()
	if err != nil || string(got) != strconv.Itoa(b.N) {
		b.Fatalf("child received %s messages (%v), want %d", got, err, b.N)
	}
}

func benchRawThroughput(b *testing.B, size int) {
	w, r, _ := rawPipes(b, "raw-sink", size)
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := w.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	got, err := io.ReadAll(r)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if want := strconv.Itoa(b.N * size); string(got) != want {
		b.Fatalf("child received %s bytes, want %s", got, want)
	}
}

// sendRecvBytes times Send then RecvInto of a 64-byte message within one
// process, and closes both ends.
func sendRecvBytes(b *testing.B, tx *ipcchan.Sender[[]byte], rx *ipcchan.Receiver[[]byte]) {
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	msg := make([]byte, 64)
	var buf []byte
	b.SetBytes(64)
	b.ReportAllocs()
	for range b.N {
		if err := tx.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		if err := rx.RecvInto(ctx, &buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeSendRecv measures Send then Recv of one message within one
// process (the message fits in the pipe), to show the per-message cost and
// allocations of the abstraction itself.
func BenchmarkPipeSendRecv(b *testing.B) {
	ctx := context.Background()
	b.Run("bytes/64B", func(b *testing.B) {
		tx, rx, err := endpoints.PipePair[[]byte]()
		if err != nil {
			b.Fatal(err)
		}
		sendRecvBytes(b, tx, rx)
	})
	b.Run("fixed/64B", func(b *testing.B) {
		type point struct {
			Seq  uint64
			Vals [7]float64
		}
		tx, rx, err := endpoints.PipePair[point]()
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Close()
		defer rx.Close()
		var p point
		b.SetBytes(64)
		b.ReportAllocs()
		for range b.N {
			if err := tx.Send(ctx, p); err != nil {
				b.Fatal(err)
			}
			if _, err := rx.Recv(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPipeFramings is BenchmarkPipeSendRecv's 64-byte []byte message
// under each framing, to show what speaking an existing program's records
// costs beside the default header.
func BenchmarkPipeFramings(b *testing.B) {
	u32, _ := codec.LengthPrefixed(4, binary.LittleEndian, false)
	for _, f := range []codec.Framing{codec.Frames, codec.FixedRecords(64), u32} {
		b.Run(f.String(), func(b *testing.B) {
			tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithFraming(f))
			if err != nil {
				b.Fatal(err)
			}
			sendRecvBytes(b, tx, rx)
		})
	}
}
