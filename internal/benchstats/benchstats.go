// Package benchstats holds what the round-trip benchmarks of both modules
// (endpoints' and bench/'s) report beside ns/op: latency percentiles of the
// individual round trips and the CPU time per op of both processes.
package benchstats

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// maxSamples bounds the latency samples a benchmark keeps: the latest
// maxSamples round trips (32 MiB of samples), enough for a steady p99.
const maxSamples = 1 << 22

// TimeRoundTrips is the timed part of a round-trip benchmark: b.N calls
// of roundTrip, each one's latency kept in a buffer allocated (and
// touched) before the timer starts, so the timed loop allocates nothing
// and takes no page faults for it. Besides ns/op it reports (see
// CPUMeter.Report for the CPU columns):
//
//   - p50-ns, p99-ns: the median and 99th percentile of the round trips'
//     latencies (nearest rank, over the latest maxSamples round trips);
//   - cpu-ns/op: the CPU time (user and system, every thread) this process
//     spent per round trip while the timer ran;
//   - peer-cpu-ns/op: the same for the peer process pid, while the timer
//     ran (not reported when pid is 0: an in-process peer's time is in
//     cpu-ns/op).
//
// A transport that spins to buy latency shows it in the CPU columns: a
// whole core spinning is as many CPU nanoseconds per op as ns/op.
func TimeRoundTrips(b *testing.B, pid int, roundTrip func()) {
	lat := make([]int64, min(b.N, maxSamples))
	for i := range lat {
		lat[i] = -1 // touches every page now, not in the timed loop
	}
	cpu := StartCPU(pid)
	b.ResetTimer()
	start := time.Now()
	prev, j := time.Duration(0), 0
	for range b.N {
		roundTrip()
		t := time.Since(start) // the monotonic clock alone: one vDSO call
		lat[j] = int64(t - prev)
		prev = t
		if j++; j == len(lat) {
			j = 0
		}
	}
	b.StopTimer()
	cpu.Report(b)
	reportLatency(b, lat)
}

// A CPUMeter holds the CPU clocks of this process and a peer at the start
// of a benchmark's timed part.
type CPUMeter struct {
	pid            int
	self, peer     int64
	selfOK, peerOK bool
}

// StartCPU reads the CPU clocks of this process and of pid (none for 0).
func StartCPU(pid int) CPUMeter {
	m := CPUMeter{pid: pid}
	if pid != 0 {
		m.peer, m.peerOK = processCPU(pid)
	}
	m.self, m.selfOK = processCPU(0)
	return m
}

// Report reports the CPU time each process spent per op since StartCPU:
// cpu-ns/op for this one, peer-cpu-ns/op for the peer. Call it after
// b.StopTimer and before the peer exits.
func (m CPUMeter) Report(b *testing.B) {
	if self, ok := processCPU(0); ok && m.selfOK {
		b.ReportMetric(float64(self-m.self)/float64(b.N), "cpu-ns/op")
	}
	if m.pid == 0 {
		return
	}
	if peer, ok := processCPU(m.pid); ok && m.peerOK {
		b.ReportMetric(float64(peer-m.peer)/float64(b.N), "peer-cpu-ns/op")
	}
}

// reportLatency reports the median and 99th percentile of lat (nearest
// rank), sorting it.
func reportLatency(b *testing.B, lat []int64) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[(len(lat)-1)*50/100]), "p50-ns")
	b.ReportMetric(float64(lat[(len(lat)-1)*99/100]), "p99-ns")
}

// processCPU returns the CPU time, in nanoseconds, that process pid has
// used (all its threads, user and system), or this process's for pid 0.
// It reads the kernel's per-process CPU clock (clock_getcpuclockid(3)'s
// encoding: the negated pid shifted left by 3, with CPUCLOCK_SCHED). The
// kernel brings a thread's count up to date when it is descheduled or at a
// scheduler tick, so a reading can lag by a tick (1–4 ms) per running
// thread: the CPU columns mean something over a run of many ops (the
// -benchtime of bench/run), not over -benchtime 1x.
func processCPU(pid int) (int64, bool) {
	clock := int32(unix.CLOCK_PROCESS_CPUTIME_ID)
	if pid != 0 {
		clock = int32(^pid)<<3 | 2 // CPUCLOCK_SCHED
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, false
	}
	return ts.Nano(), true
}
