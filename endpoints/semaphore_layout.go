package endpoints

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
)

// semLayout is glibc's sem_t (struct new_sem in sysdeps/nptl/internaltypes.h,
// used by nptl/sem_waitcommon.c) in one of its two forms, chosen by
// __HAVE_64B_ATOMICS, which is 1 on every 64-bit architecture and 0 on
// every 32-bit one:
//
//   - wide (64-bit), 32 bytes: a uint64 data word holding the value in its
//     low 32 bits and the number of sleeping waiters in its high 32, then
//     an int private. The futex word is data's low half: at offset 0 on a
//     little-endian machine, 4 on a big-endian one (SEM_VALUE_OFFSET).
//   - narrow (32-bit), 16 bytes: a uint32 value word holding the value
//     shifted left by one (SEM_VALUE_SHIFT) and, in bit 0, a flag saying
//     that waiters may sleep (SEM_NWAITERS_MASK); then int private, int
//     pad, and uint32 nwaiters, the number of waiters. The futex word is
//     the value word.
//
// private is FUTEX_SHARED (semShared) for a semaphore shared between
// processes. PROTOCOL.md §11 says the same.
type semLayout struct {
	size        int              // sizeof(sem_t)
	wide        bool             // __HAVE_64B_ATOMICS
	futexOff    int              // the word sem_post wakes and sem_wait sleeps on
	privateOff  int              // the int private
	nwaitersOff int              // narrow: nwaiters
	order       binary.ByteOrder // the machine's
}

// semLayoutFor returns sem_t's layout on a machine whose words (and
// longs) are wordSize bytes, in byte order order.
func semLayoutFor(wordSize int, order binary.ByteOrder) semLayout {
	if wordSize == 8 {
		l := semLayout{size: 32, wide: true, privateOff: 8, order: order}
		if order == binary.BigEndian {
			l.futexOff = 4
		}
		return l
	}
	return semLayout{size: 16, privateOff: 4, nwaitersOff: 12, order: order}
}

// semWide is semNative.wide as a constant, for the hot paths to branch on
// at compile time.
const semWide = unsafe.Sizeof(uintptr(0)) == 8

// semNative is this machine's sem_t.
var semNative = semLayoutFor(int(unsafe.Sizeof(uintptr(0))), nativeOrder())

// nativeOrder returns binary.LittleEndian or binary.BigEndian, whichever
// this machine uses.
func nativeOrder() binary.ByteOrder {
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// encode writes into b (l.size bytes) the sem_t of value tokens with
// waiters counted sleepers, shared between processes, as glibc lays it
// out: what sem_init(sem, 1, value) makes when waiters is 0.
func (l semLayout) encode(b []byte, value, waiters uint32) {
	clear(b[:l.size])
	if l.wide {
		l.order.PutUint64(b, uint64(waiters)<<semWaiterShift|uint64(value))
	} else {
		w := value << 1
		if waiters > 0 {
			w |= semNWaitersBit
		}
		l.order.PutUint32(b, w)
		l.order.PutUint32(b[l.nwaitersOff:], waiters)
	}
	l.order.PutUint32(b[l.privateOff:], semShared)
}

// decode returns the value and the waiter count of the sem_t in b.
func (l semLayout) decode(b []byte) (value, waiters uint32) {
	if l.wide {
		d := l.order.Uint64(b)
		return uint32(d), uint32(d >> semWaiterShift)
	}
	return l.order.Uint32(b) >> 1, l.order.Uint32(b[l.nwaitersOff:])
}

// semNWaitersBit is the narrow sem_t's SEM_NWAITERS_MASK: bit 0 of the
// value word, set while waiters may be asleep.
const semNWaitersBit = 1

// data is the wide sem_t's 64-bit word.
func (s *Semaphore) data() *uint64 { return (*uint64)(s.base) }

// futex is the word sem_post wakes and sem_wait sleeps on.
func (s *Semaphore) futex() *uint32 { return (*uint32)(unsafe.Add(s.base, semNative.futexOff)) }

// nwaiters is the narrow sem_t's waiter count.
func (s *Semaphore) nwaiters() *uint32 { return (*uint32)(unsafe.Add(s.base, semNative.nwaitersOff)) }

// init stores value and no waiters, as sem_init(sem, 1, value) does.
func (s *Semaphore) init(value uint32) {
	if semNative.wide {
		atomic.StoreUint64(s.data(), uint64(value))
	} else {
		atomic.StoreUint32(s.nwaiters(), 0)
		atomic.StoreUint32(s.futex(), value<<1)
	}
	*(*int32)(unsafe.Add(s.base, semNative.privateOff)) = semShared
}

// load returns the number of tokens (sem_getvalue).
func (s *Semaphore) load() uint32 {
	if semNative.wide {
		return uint32(atomic.LoadUint64(s.data()))
	}
	return atomic.LoadUint32(s.futex()) >> 1
}

// The narrow (32-bit) sem_t's protocol, as glibc's sem_waitcommon.c has it
// without 64-bit atomics: the value word is value<<1 | the waiters bit;
// sem_post wakes only when the bit is set, so a sleeper sets it first.

// tryTake32 takes n if the value allows it now.
func (s *Semaphore) tryTake32(n int64) bool {
	for {
		v := atomic.LoadUint32(s.futex())
		if int64(v>>1) < n {
			return false
		}
		if atomic.CompareAndSwapUint32(s.futex(), v, v-uint32(n)<<1) {
			return true
		}
	}
}

// add32 adds n tokens and wakes the sleepers if the waiters bit says
// there may be some.
func (s *Semaphore) add32(n int64) error {
	for {
		v := atomic.LoadUint32(s.futex())
		if int64(v>>1)+n > semValueMax {
			return &ipcchan.OpError{Op: "release", Endpoint: s.desc, Err: fmt.Errorf("%w: %d + %d", ErrSemOverflow, v>>1, n)}
		}
		if atomic.CompareAndSwapUint32(s.futex(), v, v+uint32(n)<<1) {
			if v&semNWaitersBit != 0 {
				sys.FutexWake(s.futex(), 1<<30)
			}
			return nil
		}
	}
}

// sleep32 is acquire's sleeping part: registered in nwaiters, with the
// waiters bit set before each sleep, as __new_sem_wait_slow does.
func (s *Semaphore) sleep32(ctx context.Context, n int64) error {
	atomic.AddUint32(s.nwaiters(), 1)
	defer s.finish32()
	timeout := unix.NsecToTimespec(int64(semPollSlice))
	for {
		if s.tryTake32(n) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		v := atomic.LoadUint32(s.futex())
		if int64(v>>1) >= n {
			continue
		}
		if v&semNWaitersBit == 0 {
			if !atomic.CompareAndSwapUint32(s.futex(), v, v|semNWaitersBit) {
				continue
			}
			v |= semNWaitersBit
		}
		if err := s.wait(v, &timeout); err != nil {
			return err
		}
	}
}

// finish32 stops being a waiter, as glibc's __sem_wait_32_finish does:
// the last waiter clears the waiters bit; if another came meanwhile, it
// sets the bit again and wakes as many sleepers as there are tokens.
func (s *Semaphore) finish32() {
	guess := atomic.LoadUint32(s.nwaiters())
	if guess == 1 {
		atomic.AndUint32(s.futex(), ^uint32(semNWaitersBit))
	}
	final := atomic.AddUint32(s.nwaiters(), ^uint32(0)) + 1 // the count before
	if final > 1 && guess == 1 {
		if v := atomic.OrUint32(s.futex(), semNWaitersBit) >> 1; v > 0 {
			sys.FutexWake(s.futex(), int(min(v, 1<<30)))
		}
	}
}
