package endpoints

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
)

// The uncontended fast paths of a Semaphore.
//
// A guarded call (use/done) costs two atomic adds on the mapping's
// callGuard besides the semaphore's own CAS: three times glibc's
// sem_wait+sem_post for an Acquire+Release. The fast paths do the take or
// the post with one CAS and no guard: fastTake and fastAdd read the two
// closed bits (the Semaphore's and its mapping's), then load and CAS the
// sem_t, and give up (false: take the guarded slow path) on anything but
// the plain case: closed, too few tokens, a sleeper to wake, an overflow,
// a lost CAS.
//
// What keeps Close from unmapping the memory under them is where they can
// stop. Both are go:nosplit and call nothing written in Go: the compiler
// makes every instruction of a nosplit function an unsafe point, so the
// scheduler can neither preempt them (no stack check, no asynchronous
// preemption) nor stop the world inside them. Mapping.Close, once its
// callGuard is shut, calls quiesce, which stops the world: a fast path
// that read "open" before the shut has then finished with the memory, and
// one that reads after it sees the shut and takes the slow path, which
// the callGuard refuses. Only after that does Close unmap. A named
// Semaphore's Close shuts its own guard, waits for its slow calls, then
// closes its mapping: the same.
//
// In a mapping a peer can shrink (m.guard: a named semaphore's file,
// POSIX shared memory, a file), take and give run the fast path under the
// fault guard as the slow path does: a fault makes them report false, and
// the slow path then returns the mapping's sticky fault error.
//
// Under the race detector the atomics are calls into Go functions, which
// the scheduler may stop at: the fast paths are off (raceBuild).

// take is the fast path of a take of n tokens: it reports whether it
// took them.
func (s *Semaphore) take(n int64) bool {
	if s.m.guard {
		return s.takeGuarded(n)
	}
	return s.fastTake(n)
}

func (s *Semaphore) takeGuarded(n int64) (ok bool) {
	if s.m.fault.Load() != nil {
		return false
	}
	var err error // the fault's: the slow path returns it again
	defer s.m.catchFault(&err, debug.SetPanicOnFault(true))
	return s.fastTake(n)
}

// give is the fast path of a post of n tokens: it reports whether it
// added them.
func (s *Semaphore) give(n int64) bool {
	if s.m.guard {
		return s.giveGuarded(n)
	}
	return s.fastAdd(n)
}

func (s *Semaphore) giveGuarded(n int64) (ok bool) {
	if s.m.fault.Load() != nil {
		return false
	}
	var err error
	defer s.m.catchFault(&err, debug.SetPanicOnFault(true))
	return s.fastAdd(n)
}

// quiesce returns once every goroutine that was inside a fast path when it
// was called has left it: runtime.ReadMemStats stops the world, which
// waits for every running goroutine to reach a safe point.
func quiesce() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
}

// fastTake takes n (0 <= n <= semValueMax) tokens if the semaphore is
// open and has them, at the first try. s.fast must be set, and the fault
// guard on where the mapping needs it (take). It must stay nosplit, and
// call nothing but atomics (see above).
//
//go:nosplit
//go:noinline
func (s *Semaphore) fastTake(n int64) bool {
	if (s.calls.state.Load()|s.m.uses.state.Load())&guardShut != 0 {
		return false
	}
	if semWide {
		p := (*uint64)(s.base)
		d := atomic.LoadUint64(p)
		return int64(uint32(d)) >= n && atomic.CompareAndSwapUint64(p, d, d-uint64(n))
	}
	p := (*uint32)(s.base) // the narrow sem_t's futex word is at 0
	v := atomic.LoadUint32(p)
	return int64(v>>1) >= n && atomic.CompareAndSwapUint32(p, v, v-uint32(n)<<1)
}

// fastAdd adds n (0 <= n <= semValueMax) tokens if the semaphore is open,
// nobody sleeps on it and the value stays within SEM_VALUE_MAX, at the
// first try. The CAS compares the waiter count (or bit) too, so that a
// sleeper that registers meanwhile makes it fail: the slow path then
// wakes it. s.fast must be set, and the fault guard on where the mapping
// needs it (give). It must stay nosplit, and call nothing but atomics.
//
//go:nosplit
//go:noinline
func (s *Semaphore) fastAdd(n int64) bool {
	if (s.calls.state.Load()|s.m.uses.state.Load())&guardShut != 0 {
		return false
	}
	if semWide {
		p := (*uint64)(s.base)
		d := atomic.LoadUint64(p)
		return d>>semWaiterShift == 0 && int64(uint32(d))+n <= semValueMax &&
			atomic.CompareAndSwapUint64(p, d, d+uint64(n))
	}
	p := (*uint32)(s.base)
	v := atomic.LoadUint32(p)
	return v&semNWaitersBit == 0 && int64(v>>1)+n <= semValueMax &&
		atomic.CompareAndSwapUint32(p, v, v+uint32(n)<<1)
}
