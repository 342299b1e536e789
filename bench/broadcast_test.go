package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/benchstats"
	"github.com/ipcchan/go/ipcchan"
	"golang.org/x/sys/unix"
)

// The publish/subscribe benchmarks: this process publishes b.N values to
// subs subscriber processes, each of which must receive every one, either
// through one broadcast (endpoints.Broadcast, lossless: the value is
// written once and every subscriber reads it in place) or through subs
// separate rings (endpoints.RingPair) to which the publisher sends each
// value in turn. Both buffer as much per subscriber (a 4 MiB data area).
//
// Each value carries its sequence number in its first 8 bytes and a tag
// derived from it in its last 8: a subscriber checks the order, and
// answers its batch with the count and a checksum over both words, which
// this process compares with what it sent, so that a benchmark cannot
// pass while losing, repeating or tearing values.

// bcastSubs are the numbers of subscriber processes.
var bcastSubs = []int{1, 2, 4, 8}

// bcastArea is the data area of the broadcast and of each ring.
const bcastArea = 4 << 20

// BenchmarkBroadcast/SIZE/{broadcast,rings}/subs=N: ns/op is the
// publisher's wall time per value (every subscriber has all of them when
// the timer stops), values/s what each subscriber receives, cpu-ns/op the
// publisher process's CPU time per value, sub-cpu-ns/op a subscriber
// process's (the mean over them) per value.
func BenchmarkBroadcast(b *testing.B) {
	for _, s := range sizes[:2] {
		for _, kind := range []string{"broadcast", "rings"} {
			for _, subs := range bcastSubs {
				b.Run(fmt.Sprintf("%s/%s/subs=%d", s.name, kind, subs), func(b *testing.B) {
					p, err := startPublisher(kind, s.n, subs)
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { p.close() }) // on a failure: end the children
					publish(b, p, s.n)
				})
			}
		}
	}
}

// A publisher is this process's side of one benchmark: what it sends
// through, each subscriber's acknowledgements, and the children.
type publisher struct {
	txs    []*ipcchan.Sender[[]byte] // the broadcast, or one ring per subscriber
	acks   []*ipcchan.Receiver[[]byte]
	cmds   []*exec.Cmd
	closed bool
}

func startPublisher(kind string, size, subs int) (p *publisher, err error) {
	p = &publisher{}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	var m *endpoints.Mapping
	if kind == "broadcast" {
		if m, err = endpoints.NewMemfd("bench-broadcast", 4096+bcastArea); err != nil {
			return nil, err
		}
		defer m.Close()
		pub, err := endpoints.Broadcast[[]byte](m, ipcchan.WithSubscribers(subs))
		if err != nil {
			return nil, err
		}
		p.txs = append(p.txs, pub)
	}
	for range subs {
		var in *ipcchan.Receiver[[]byte]
		if m != nil {
			// Joined here and moved to the child with its position: it
			// misses nothing published after this.
			in, err = endpoints.Subscribe[[]byte](m)
		} else {
			var tx *ipcchan.Sender[[]byte]
			tx, in, err = endpoints.RingPair[[]byte](256 + bcastArea)
			if err == nil {
				p.txs = append(p.txs, tx)
			}
		}
		if err != nil {
			return nil, err
		}
		out, ack, err := endpoints.RingPair[[]byte](256 + 4096)
		if err != nil {
			in.Close()
			return nil, err
		}
		cmd := child("subscriber", "sink", size)
		if err := endpoints.Start(cmd, endpoints.Pass("in", in), endpoints.Pass("out", out)); err != nil {
			ack.Close()
			return nil, err
		}
		p.cmds = append(p.cmds, cmd)
		p.acks = append(p.acks, ack)
		if err := ack.WatchPeer(cmd.Process.Pid); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// send publishes msg to every subscriber.
func (p *publisher) send(ctx context.Context, msg []byte) error {
	for _, tx := range p.txs {
		if err := tx.Send(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

// close ends the stream (io.EOF for each subscriber) and waits for the
// children.
func (p *publisher) close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var first error
	for _, tx := range p.txs {
		if err := tx.Close(); err != nil && first == nil {
			first = err
		}
	}
	for _, cmd := range p.cmds {
		if err := cmd.Wait(); err != nil && first == nil {
			first = fmt.Errorf("subscriber: %w", err)
		}
	}
	for _, ack := range p.acks {
		ack.Close()
	}
	return first
}

// An acknowledgement is a subscriber's answer to a batch: how many values
// it got, their checksum, and the CPU time it spent on them.
type acknowledgement struct{ count, sum, cpu uint64 }

func (a *acknowledgement) decode(msg []byte) error {
	if len(msg) != 24 {
		return fmt.Errorf("acknowledgement of %d bytes, want 24", len(msg))
	}
	a.count = binary.LittleEndian.Uint64(msg)
	a.sum = binary.LittleEndian.Uint64(msg[8:])
	a.cpu = binary.LittleEndian.Uint64(msg[16:])
	return nil
}

// publish measures b.N values of size bytes to every subscriber, after
// an untimed empty batch that makes sure every child is up.
func publish(b *testing.B, p *publisher, size int) {
	ctx := context.Background()
	head, msg, buf := make([]byte, 8), make([]byte, size), make([]byte, 0, 64)
	var ack acknowledgement
	batch := func(n int, want uint64) uint64 { // the subscribers' CPU time, summed
		binary.LittleEndian.PutUint64(head, uint64(n))
		if err := p.send(ctx, head); err != nil {
			b.Fatal(err)
		}
		for i := range n {
			stamp(msg, uint64(i))
			if err := p.send(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
		var cpu uint64
		for _, rx := range p.acks {
			buf = buf[:0]
			if err := rx.RecvInto(ctx, &buf); err != nil {
				b.Fatal(err)
			}
			if err := ack.decode(buf); err != nil {
				b.Fatal(err)
			}
			if ack.count != uint64(n) || ack.sum != want {
				b.Fatalf("a subscriber received %d values with checksum %#x, want %d with %#x", ack.count, ack.sum, n, want)
			}
			cpu += ack.cpu
		}
		return cpu
	}
	batch(0, 0)
	want := checksum(uint64(b.N))
	b.SetBytes(int64(size))
	b.ReportAllocs()
	cpu := benchstats.StartCPU(0)
	b.ResetTimer()
	subCPU := batch(b.N, want)
	b.StopTimer()
	cpu.Report(b)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "values/s")
	b.ReportMetric(float64(subCPU)/float64(len(p.acks))/float64(b.N), "sub-cpu-ns/op")
	if err := p.close(); err != nil {
		b.Fatal(err)
	}
}

// stamp puts value i's sequence number at the start of msg and its tag
// at the end (msg holds at least 16 bytes).
func stamp(msg []byte, i uint64) {
	binary.LittleEndian.PutUint64(msg, i)
	binary.LittleEndian.PutUint64(msg[len(msg)-8:], tag(i))
}

func tag(i uint64) uint64 { return i*0x9e3779b97f4a7c15 ^ 0x5bd1e995 }

// mix folds a value's two words into a checksum.
func mix(sum, first, last uint64) uint64 { return (sum^first)*0x100000001b3 + last }

// checksum is what a subscriber's sum over values 0..n-1 must be.
func checksum(n uint64) uint64 {
	var sum uint64
	for i := range n {
		sum = mix(sum, i, tag(i))
	}
	return sum
}

func init() {
	// A subscriber: batches of a count (an 8-byte value) then that many
	// values, each answered with an acknowledgement, until io.EOF.
	peers["subscriber"] = func(mode string, size int) error {
		rx, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		if err := rx.WatchPeer(os.Getppid()); err != nil { // a publisher that failed or died ends the wait
			return err
		}
		tx, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			return err
		}
		defer tx.Close()
		ctx := context.Background()
		buf := make([]byte, 0, max(size, 24))
		for {
			msg := buf[:0]
			if err := rx.RecvInto(ctx, &msg); err != nil {
				return ignoreEOF(err)
			}
			if len(msg) != 8 {
				return fmt.Errorf("a batch's count of %d bytes, want 8", len(msg))
			}
			n := binary.LittleEndian.Uint64(msg)
			start := processCPU()
			var sum uint64
			for i := range n {
				msg = buf[:0]
				if err := rx.RecvInto(ctx, &msg); err != nil {
					return err
				}
				if len(msg) != size {
					return fmt.Errorf("value %d has %d bytes, want %d", i, len(msg), size)
				}
				first, last := binary.LittleEndian.Uint64(msg), binary.LittleEndian.Uint64(msg[size-8:])
				if first != i {
					return fmt.Errorf("value %d arrived where %d was due", first, i)
				}
				sum = mix(sum, first, last)
			}
			ack := binary.LittleEndian.AppendUint64(buf[:0], n)
			ack = binary.LittleEndian.AppendUint64(ack, sum)
			ack = binary.LittleEndian.AppendUint64(ack, uint64(processCPU()-start))
			if err := tx.Send(ctx, ack); err != nil {
				return err
			}
		}
	}
}

// processCPU is this process's CPU time so far, in nanoseconds.
func processCPU() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return ts.Nano()
}
