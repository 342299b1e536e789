package endpoints_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/sys"
)

// BenchmarkRingRoundTrip measures a 64-byte message to a child process and
// back over two rings, beside a hand-written shared-memory ping-pong with
// the same wake-up scheme (spin, then a futex) and beside the pipe
// endpoint's round trip, in the same run.
func BenchmarkRingRoundTrip(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run("ipcchan/"+sizeName(size), func(b *testing.B) {
			toChild, in, err := endpoints.RingPair[[]byte](256 + 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			out, fromChild, err := endpoints.RingPair[[]byte](256 + 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			p := startHelper(b, "echo", nil, endpoints.Pass("in", in), endpoints.Pass("out", out))
			b.Cleanup(func() { toChild.Close(); fromChild.Close() })
			ctx := context.Background()
			msg := make([]byte, size)
			var buf []byte
			measureRoundTrips(b, size, p.cmd.Process.Pid, func() {
				if err := toChild.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
				if err := fromChild.RecvInto(ctx, &buf); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run("raw-shm/"+sizeName(size), func(b *testing.B) { benchRawShmPingPong(b, size) })
	}
	b.Run("pipe-ipcchan/64B", func(b *testing.B) { benchRoundTrip(b, 64) })
}

// BenchmarkRingThroughput measures one-way records to a child that takes
// them all, and beside it the memcpy bandwidth of this machine (copying
// the same sizes within one process), in the same run.
func BenchmarkRingThroughput(b *testing.B) {
	for _, size := range benchSizes {
		b.Run("ipcchan/"+sizeName(size), func(b *testing.B) {
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
		})
		b.Run("memcpy/"+sizeName(size), func(b *testing.B) {
			// A 4 MiB source and destination, as the ring's data area,
			// copied size bytes at a time.
			src, dst := make([]byte, 4<<20), make([]byte, 4<<20)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			off := 0
			for range b.N {
				if off+size > len(src) {
					off = 0
				}
				copy(dst[off:off+size], src[off:off+size])
				off += size
			}
		})
	}
}

// The raw ping-pong's shared words: each side's sequence number and
// parked flag on cache lines of their own, then each side's message.
const (
	pingSeq  = 0
	pingWait = 64
	pongSeq  = 128
	pongWait = 192
	pingMsg  = 256
	pongMsg  = 256 + 8192
)

func word(mem []byte, off int) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }

// rawSignal publishes seq on the sequence word and wakes a parked peer.
func rawSignal(mem []byte, seqOff, waitOff int, seq uint32) {
	atomic.StoreUint32(word(mem, seqOff), seq)
	if atomic.LoadUint32(word(mem, waitOff)) != 0 {
		atomic.StoreUint32(word(mem, waitOff), 0)
		sys.FutexWake(word(mem, waitOff), 1)
	}
}

// rawAwait waits until the sequence word reaches seq: it spins for up to
// 50 µs, then parks on the futex, as the ring does.
func rawAwait(mem []byte, seqOff, waitOff int, seq uint32) {
	start := time.Now()
	for atomic.LoadUint32(word(mem, seqOff)) != seq {
		if time.Since(start) < 50*time.Microsecond {
			runtime.Gosched()
			continue
		}
		atomic.StoreUint32(word(mem, waitOff), 1)
		if atomic.LoadUint32(word(mem, seqOff)) == seq {
			atomic.StoreUint32(word(mem, waitOff), 0)
			break
		}
		sys.FutexWait(word(mem, waitOff), 1, nil)
	}
}

func benchRawShmPingPong(b *testing.B, size int) {
	m, err := endpoints.NewMemfd("pingpong", 256+2*8192)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	f, err := m.File()
	if err != nil {
		b.Fatal(err)
	}
	cmd := helperCmd(b, "raw-shm-pong", "IPCCHAN_SIZE="+strconv.Itoa(size))
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	mem := m.Bytes()
	msg := make([]byte, size)
	seq := uint32(0)
	measureRoundTrips(b, size, cmd.Process.Pid, func() {
		seq++
		copy(mem[pingMsg:], msg)
		rawSignal(mem, pingSeq, pingWait, seq)
		rawAwait(mem, pongSeq, pongWait, seq)
		copy(msg, mem[pongMsg:pongMsg+size])
	})
	rawSignal(mem, pingSeq, pingWait, 0) // tells the child to stop
	cmd.Wait()
}

func init() {
	// raw-shm-pong answers every ping of the raw ping-pong until the
	// sequence goes back to 0.
	childRoles["raw-shm-pong"] = func() error {
		f := os.NewFile(3, "mem")
		m, err := endpoints.MappingFromFile(f)
		f.Close()
		if err != nil {
			return err
		}
		defer m.Close()
		mem := m.Bytes()
		size, _ := strconv.Atoi(os.Getenv("IPCCHAN_SIZE"))
		for seq := uint32(1); ; seq++ {
			start := time.Now()
			for {
				got := atomic.LoadUint32(word(mem, pingSeq))
				if got == seq {
					break
				}
				if got == 0 && seq > 1 {
					return nil
				}
				if time.Since(start) < 50*time.Microsecond {
					runtime.Gosched()
					continue
				}
				atomic.StoreUint32(word(mem, pingWait), 1)
				if g := atomic.LoadUint32(word(mem, pingSeq)); g == seq || (g == 0 && seq > 1) {
					atomic.StoreUint32(word(mem, pingWait), 0)
					continue
				}
				sys.FutexWait(word(mem, pingWait), 1, nil)
			}
			copy(mem[pongMsg:pongMsg+size], mem[pingMsg:pingMsg+size])
			rawSignal(mem, pongSeq, pongWait, seq)
		}
	}
}

// BenchmarkRingSendRecv measures Send then Recv of one record within one
// process: the per-message cost of the ring itself, with no waiting.
func BenchmarkRingSendRecv(b *testing.B) {
	tx, rx, err := endpoints.RingPair[[]byte](256 + 1<<16)
	if err != nil {
		b.Fatal(err)
	}
	sendRecvBytes(b, tx, rx)
}
