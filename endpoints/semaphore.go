package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// Semaphore is a counting semaphore shared between processes, in memory
// laid out exactly as the C library's sem_t (glibc's, in its 64-bit or
// 32-bit form as the machine's C library has it; see semLayout): a named one
// ([CreateSemaphore], [OpenSemaphore]) is the same object as C's
// sem_open("/name") makes, /dev/shm/sem.name, and a Go process and a C
// process share it — sem_post from C wakes a Go Acquire and the other way
// round. It is pure Go: atomics on the shared word, and futexes to sleep.
//
// Its methods are safe for concurrent use. Acquire and Release have the
// signatures of golang.org/x/sync/semaphore.Weighted, across processes;
// [SemaphoreSender] and [SemaphoreReceiver] make it a channel of tokens.
//
// A POSIX semaphore has no undo: a process that dies holding tokens does
// not give them back (use a [SemSet], whose operations are undone, where
// that matters).
//
// A semaphore lives in shared memory that a peer may truncate: a named
// one's file, or the mapping of an unnamed one (unless it is a memfd,
// which is sealed, or a SysV segment; see [Mapping]). Its operations then
// fail with an error wrapping [ErrCorrupt], for good: Acquire and Post
// return it, TryAcquire reports false, Value -1, and Release does
// nothing.
type Semaphore struct {
	m     *Mapping
	owned bool           // a named semaphore's own mapping, unmapped by Close
	base  unsafe.Pointer // the sem_t, laid out as semNative says
	desc  string

	calls callGuard // calls touching the memory; Close waits for them

	// fast says that the uncontended calls skip the call guards (see
	// semfast.go): always, but under the race detector.
	fast bool
}

// glibc's sem_t: see semLayout for its two forms.
const (
	semValueMax    = 0x7FFF_FFFF // SEM_VALUE_MAX
	semWaiterShift = 32
	semWaiterOne   = 1 << semWaiterShift
	semPollSlice   = time.Millisecond // a sleeping Acquire looks at ctx this often

	// semShared is what glibc stores in sem_t's private field for a
	// semaphore shared between processes (FUTEX_SHARED, which is
	// FUTEX_PRIVATE_FLAG: glibc XORs it into the futex operation). With 0
	// there, C would sleep on a private futex that no other process's
	// wake reaches.
	semShared = 128
)

// semPath checks a named semaphore's name ("/name", as sem_open takes it)
// and returns its file, as glibc names it.
func semPath(name string) (string, error) {
	p, err := shmPath(name)
	if err != nil {
		return "", err
	}
	return shmDir + "sem." + p[len(shmDir):], nil
}

// CreateSemaphore creates the named semaphore name ("/something") with the
// given value, as sem_open(name, O_CREAT|O_EXCL, mode, value) does: the
// file is written whole under a temporary name and linked into place, so
// that no process ever sees it half made; an existing one is refused
// (wrapping os.ErrExist). Mode from ipcchan.WithPerm, 0600 by default (the
// one option it honours).
// When /dev/shm is full it fails with an error wrapping unix.ENOSPC that
// says so, and leaves nothing behind.
func CreateSemaphore(name string, value uint32, opts ...ipcchan.Option) (*Semaphore, error) {
	desc := "semaphore " + name
	path, err := semPath(name)
	if err != nil {
		return nil, opErr("create", desc, err)
	}
	if value > semValueMax {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: desc, Err: fmt.Errorf("%w: initial value %d", ErrSemOverflow, value)}
	}
	// Named as ObjectName would, so that Leftovers finds it if we die
	// before the unlink below.
	tmp := fmt.Sprintf("%ssem.ipcchan-%d-tmp-%s", shmDir, os.Getpid(), randomHex(6))
	cfg, err := newConfig("create", desc, optCreate, opts)
	if err != nil {
		return nil, err
	}
	perm := uint32(cfg.Perm())
	fd, err := unix.Open(tmp, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, opErr("create", desc, err)
	}
	defer unix.Unlink(tmp)
	err = unix.Fchmod(fd, perm) // whatever the umask took away
	if err == nil {
		err = reserve(fd, int64(semNative.size), strings.TrimSuffix(shmDir, "/"))
	}
	if err != nil {
		unix.Close(fd)
		return nil, opErr("create", desc, err)
	}
	var init [32]byte
	semNative.encode(init[:], value, 0)
	if _, err := unix.Pwrite(fd, init[:semNative.size], 0); err != nil {
		unix.Close(fd)
		return nil, opErr("create", desc, err)
	}
	if err := unix.Link(tmp, path); err != nil {
		unix.Close(fd)
		return nil, opErr("create", desc, err)
	}
	m, err := mapFD(fd, desc, semNative.size, func() error { return os.Remove(path) }, false)
	if err != nil {
		os.Remove(path)
		return nil, err
	}
	return newSemaphore(m, m.Bytes(), 0, desc, true), nil
}

// OpenSemaphore opens the existing named semaphore name, made by this
// library or by C's sem_open. A file of the wrong size is refused, and so
// is a symbolic link.
func OpenSemaphore(name string) (*Semaphore, error) {
	desc := "semaphore " + name
	path, err := semPath(name)
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	m, err := mapWhole(fd, desc, func() error { return os.Remove(path) })
	if err != nil {
		return nil, err
	}
	if m.Len() != semNative.size {
		m.Close()
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: fmt.Errorf("%w: %d bytes, a sem_t is %d here: not a semaphore (or one made by a program of another word size)", ErrMappingSize, m.Len(), semNative.size)}
	}
	return newSemaphore(m, m.Bytes(), 0, desc, true), nil
}

// RemoveSemaphore removes the named semaphore name (sem_unlink).
func RemoveSemaphore(name string) error {
	path, err := semPath(name)
	if err == nil {
		err = unix.Unlink(path)
	}
	return transport.WrapError("unlink", "semaphore "+name, err)
}

// InitSemaphore makes an unnamed semaphore with the given value at offset
// in m, as sem_init(sem, 1, value) does in shared memory, and returns it.
// The 32 bytes at offset (8-byte aligned) hold it (16 bytes on 32-bit
// Linux, whose sem_t is that size); every process that maps m reaches it
// with [SemaphoreAt].
func InitSemaphore(m *Mapping, offset int, value uint32) (*Semaphore, error) {
	s, err := SemaphoreAt(m, offset)
	if err != nil {
		return nil, err
	}
	if value > semValueMax {
		return nil, &ipcchan.OpError{Op: "init", Endpoint: s.desc, Err: fmt.Errorf("%w: initial value %d", ErrSemOverflow, value)}
	}
	err = m.access(func() error {
		s.init(value)
		return nil
	})
	if err != nil {
		return nil, opErr("init", s.desc, err)
	}
	return s, nil
}

// SemaphoreAt returns the unnamed semaphore at offset in m, initialised
// there by [InitSemaphore] in this or another process (or by C's
// sem_init). The semaphore lives in m: once m is closed its calls return
// what they return after Close (an Acquire waiting then returns an error
// wrapping os.ErrClosed within a millisecond, and m's Close waits for it).
// It returns an error wrapping ErrMappingSize if the semaphore does not fit
// at offset (8-byte aligned), and one wrapping os.ErrClosed once m is
// closed.
func SemaphoreAt(m *Mapping, offset int) (*Semaphore, error) {
	desc := fmt.Sprintf("semaphore at %d in %s", offset, m)
	mem := m.Bytes() // once: a Close meanwhile empties it
	if mem == nil && m.made() && m.uses.closed() {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: os.ErrClosed}
	}
	if offset < 0 || offset%8 != 0 || offset+semNative.size > len(mem) {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: fmt.Errorf("%w: %d bytes at offset %d of %d (8-byte aligned)", ErrMappingSize, semNative.size, offset, len(mem))}
	}
	return newSemaphore(m, mem, offset, desc, false), nil
}

// newSemaphore returns the Semaphore at offset in mem, m's memory; owned
// says that its Close closes m.
func newSemaphore(m *Mapping, mem []byte, offset int, desc string, owned bool) *Semaphore {
	s := &Semaphore{m: m, owned: owned, base: unsafe.Pointer(&mem[offset]), desc: desc, fast: !raceBuild}
	if s.fast {
		m.unguarded.Store(true) // before any fast path can run
	}
	return s
}

// use marks a call touching the memory; it fails after Close. done ends
// it. A named semaphore's Close waits for the calls to end before it
// unmaps its own mapping. An unnamed one lives in the caller's mapping,
// which the caller may close at any time: its calls are uses of that
// mapping, so that it stays mapped until done, and fail once it is
// closed.
func (s *Semaphore) use() bool {
	if s.owned {
		return s.calls.enter()
	}
	if !s.m.uses.enter() {
		return false
	}
	if s.calls.closed() {
		s.m.uses.leave()
		return false
	}
	return true
}

func (s *Semaphore) done() {
	if s.owned {
		s.calls.leave()
		return
	}
	s.m.uses.leave()
}

// access runs f on the semaphore's memory, under the mapping's fault
// guard if it needs one (see guarded).
func (s *Semaphore) access(op string, f func() error) error {
	if s.m.guard {
		return s.guarded(op, f)
	}
	return f()
}

// guarded runs f under the mapping's fault guard, and returns f's error
// or, wrapped for op, the mapping's fault error.
func (s *Semaphore) guarded(op string, f func() error) error {
	err := s.m.guarded(f)
	if err != nil && err == s.m.faultErr() {
		return opErr(op, s.desc, err)
	}
	return err
}

// tryTake takes n if the value allows it now.
func (s *Semaphore) tryTake(n int64) bool {
	if !semWide {
		return s.tryTake32(n)
	}
	for {
		d := atomic.LoadUint64(s.data())
		if int64(uint32(d)) < n {
			return false
		}
		if atomic.CompareAndSwapUint64(s.data(), d, d-uint64(n)) {
			return true
		}
	}
}

// TryAcquire takes n tokens if they are there now, without waiting, and
// reports whether it did. It returns false after Close, and on memory a
// peer shrank.
func (s *Semaphore) TryAcquire(n int64) bool {
	if s != nil && s.fast && n >= 0 && n <= semValueMax && (s.m.guard && s.takeGuarded(n) || !s.m.guard && s.fastTake(n)) {
		return true
	}
	ok, _ := s.tryAcquireSlow(n)
	return ok
}

// tryAcquire is TryAcquire, with the error of memory a peer shrank.
func (s *Semaphore) tryAcquire(n int64) (ok bool, err error) {
	if s != nil && s.fast && n >= 0 && n <= semValueMax && (s.m.guard && s.takeGuarded(n) || !s.m.guard && s.fastTake(n)) {
		return true, nil
	}
	return s.tryAcquireSlow(n)
}

// tryAcquireSlow is tryAcquire past the fast path (semfast.go), kept out
// of the small functions that try that first, so that they stay small.
func (s *Semaphore) tryAcquireSlow(n int64) (ok bool, err error) {
	if !s.made() || !s.use() {
		return false, nil
	}
	defer s.done()
	err = s.access("acquire", func() error {
		ok = n >= 0 && s.tryTake(n)
		return nil
	})
	return ok, err
}

// Acquire takes n tokens, waiting until there are that many. It returns
// ctx.Err() if ctx ends first (noticed within a millisecond), having taken
// nothing; an error wrapping os.ErrClosed after Close; an error wrapping
// ErrCorrupt on memory a peer shrank. Tokens are taken all at once, never
// a few at a time.
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	if s != nil && s.fast && ctx != nil && n >= 0 && n <= semValueMax && (s.m.guard && s.takeGuarded(n) || !s.m.guard && s.fastTake(n)) {
		return nil
	}
	return s.acquireSlow(ctx, n)
}

// acquireSlow is Acquire past the fast path.
func (s *Semaphore) acquireSlow(ctx context.Context, n int64) error {
	switch {
	case !s.made():
		return s.notMade("acquire")
	case ctx == nil:
		return &ipcchan.OpError{Op: "acquire", Endpoint: s.desc, Err: errNilContext}
	}
	if n < 0 || n > semValueMax {
		return &ipcchan.OpError{Op: "acquire", Endpoint: s.desc, Err: fmt.Errorf("cannot take %d tokens", n)}
	}
	if !s.use() {
		return &ipcchan.OpError{Op: "acquire", Endpoint: s.desc, Err: os.ErrClosed}
	}
	defer s.done()
	if s.m.guard {
		return s.guarded("acquire", func() error { return s.acquire(ctx, n) })
	}
	return s.acquire(ctx, n)
}

// acquire is Acquire once the call is under way.
func (s *Semaphore) acquire(ctx context.Context, n int64) error {
	if s.tryTake(n) {
		return nil
	}
	// Spin briefly: a holder about to release is often a few microseconds
	// away.
	for start := time.Now(); time.Since(start) < 20*time.Microsecond; {
		runtime.Gosched()
		if s.tryTake(n) {
			return nil
		}
	}
	if !semWide {
		return s.sleep32(ctx, n)
	}
	// Sleep as glibc's sem_wait does: counted among the waiters, so that
	// every sem_post (ours or C's) wakes us.
	atomic.AddUint64(s.data(), semWaiterOne)
	defer atomic.AddUint64(s.data(), ^uint64(semWaiterOne-1))
	timeout := unix.NsecToTimespec(int64(semPollSlice))
	for {
		if s.tryTake(n) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		v := atomic.LoadUint32(s.futex())
		if int64(v) >= n {
			continue
		}
		if err := s.wait(v, &timeout); err != nil {
			return err
		}
	}
}

// wait sleeps on the futex word while it holds v, for at most timeout,
// and returns the error that ends the Acquire: the memory broke, or the
// Semaphore or its mapping is closing.
func (s *Semaphore) wait(v uint32, timeout *unix.Timespec) error {
	if sys.FutexWait(s.futex(), v, timeout) == unix.EFAULT {
		return &ipcchan.OpError{Op: "acquire", Endpoint: s.desc, Err: s.m.broke("a futex wait (EFAULT)")}
	}
	if s.calls.closed() || s.m.uses.closed() {
		// This Semaphore, or the mapping it lives in, is closing, and
		// waits for this call to let go of the memory.
		return &ipcchan.OpError{Op: "acquire", Endpoint: s.desc, Err: os.ErrClosed}
	}
	return nil
}

// Release adds n tokens and wakes waiters, as sem_post does n times. Like
// semaphore.Weighted's, it panics on misuse: here, a release past
// SEM_VALUE_MAX (use Post for an error instead). After Close, on a
// Semaphore nobody made and on memory a peer shrank it does nothing: the
// handle no longer reaches the semaphore (Post returns the error).
func (s *Semaphore) Release(n int64) {
	if s != nil && s.fast && n >= 0 && n <= semValueMax && (s.m.guard && s.giveGuarded(n) || !s.m.guard && s.fastAdd(n)) {
		return
	}
	s.releaseSlow(n)
}

// releaseSlow is Release past the fast path.
func (s *Semaphore) releaseSlow(n int64) {
	if err := s.postSlow(n); errors.Is(err, ErrSemOverflow) {
		panic(err)
	}
}

// Post adds one token (sem_post). It returns an error wrapping
// ErrSemOverflow at SEM_VALUE_MAX, os.ErrClosed after Close, and
// ErrCorrupt on memory a peer shrank.
func (s *Semaphore) Post() error { return s.post(1) }

func (s *Semaphore) post(n int64) error {
	if s != nil && s.fast && n >= 0 && n <= semValueMax && (s.m.guard && s.giveGuarded(n) || !s.m.guard && s.fastAdd(n)) {
		return nil
	}
	return s.postSlow(n)
}

// postSlow is post past the fast path.
func (s *Semaphore) postSlow(n int64) error {
	if !s.made() {
		return s.notMade("release")
	}
	if n < 0 {
		return &ipcchan.OpError{Op: "release", Endpoint: s.desc, Err: fmt.Errorf("cannot release %d tokens", n)}
	}
	if !s.use() {
		return &ipcchan.OpError{Op: "release", Endpoint: s.desc, Err: os.ErrClosed}
	}
	defer s.done()
	if s.m.guard {
		return s.guarded("release", func() error { return s.add(n) })
	}
	return s.add(n)
}

// add adds n tokens and wakes the sleepers.
func (s *Semaphore) add(n int64) error {
	if !semWide {
		return s.add32(n)
	}
	for {
		d := atomic.LoadUint64(s.data())
		if int64(uint32(d))+n > semValueMax {
			return &ipcchan.OpError{Op: "release", Endpoint: s.desc, Err: fmt.Errorf("%w: %d + %d", ErrSemOverflow, uint32(d), n)}
		}
		if atomic.CompareAndSwapUint64(s.data(), d, d+uint64(n)) {
			if d>>semWaiterShift != 0 {
				sys.FutexWake(s.futex(), 1<<30)
			}
			return nil
		}
	}
}

// Value returns the number of tokens now (sem_getvalue), or -1 after
// Close and on memory a peer shrank.
func (s *Semaphore) Value() int {
	if !s.made() || !s.use() {
		return -1
	}
	defer s.done()
	var v uint32
	if s.access("value", func() error { v = s.load(); return nil }) != nil {
		return -1
	}
	return int(v)
}

// made reports whether a constructor made s.
func (s *Semaphore) made() bool { return s != nil && s.m != nil }

func (s *Semaphore) notMade(op string) error {
	return errNotMade(op, "Semaphore", "CreateSemaphore, OpenSemaphore, InitSemaphore or SemaphoreAt")
}

// Close releases this process's mapping of a named semaphore (sem_close);
// the semaphore itself stays until unlinked. Like [Mapping.Close] it stops
// the world for a moment before it unmaps. An unnamed one's mapping is
// the caller's to close, after this.
// Waiting Acquires return an error wrapping os.ErrClosed (within a
// millisecond).
func (s *Semaphore) Close() error {
	if !s.made() {
		return s.notMade("close")
	}
	if !s.calls.close() || !s.owned {
		// An unnamed semaphore's calls hold the caller's mapping, not
		// this: nothing to wait for before returning.
		return nil
	}
	s.calls.wait() // a waiting Acquire sees the close within a millisecond
	return s.m.Close()
}

// Remove removes a named semaphore (sem_unlink); it stays usable where it
// is open.
func (s *Semaphore) Remove() error {
	if !s.made() {
		return s.notMade("remove")
	}
	return s.m.Remove()
}

func (s *Semaphore) String() string {
	if !s.made() {
		return "zero Semaphore"
	}
	return s.desc
}
