package poller

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Blocking runs, one call at a time, a system call that waits without a
// descriptor the runtime poller could watch (msgrcv, msgsnd, semop), so
// that the wait still ends promptly on context cancellation, Close and
// Fail.
//
// A call first tries the non-blocking form, then retries it for a short
// adaptive while (as FD.Read spins), and only then makes the blocking form
// on an OS thread locked for the purpose. Cancellation, Close and Fail
// interrupt that thread with SIGURG, which the Go runtime ignores (it uses
// it for preemption, so every Go program tolerates it) and which makes
// these calls fail with EINTR: System V IPC calls are never restarted after
// a signal, whatever SA_RESTART says. The blocked call costs one thread
// while it waits and nothing once it returns; no goroutine waits with it.
//
// Calls (Do) on one Blocking must not overlap; Close and Fail are safe
// for concurrent use with everything.
type Blocking struct {
	spin spinner

	// wake, if set, replaces the signal: it must make the blocking form
	// return promptly (a futex wait, say, which a signal does not end),
	// or report false to have the signal sent after all.
	wake func() bool

	closed  atomic.Bool
	failErr atomic.Pointer[error]

	mu     sync.Mutex
	gen    uint64 // the current call
	active bool   // the current call may be in its blocking form
	tid    int    // the thread it runs on
}

// Do runs one call on b: it calls try(arg) until that returns something
// other than unix.EAGAIN, then block(arg), which must wait in the kernel
// and return unix.EINTR when a signal interrupts it. It returns try's or
// block's result, ctx.Err() when ctx ends first, os.ErrClosed after Close,
// or Fail's error where the call would wait. try runs at least once unless
// Close was called, so that a ready message is never refused. The call's
// argument is passed to try and block, rather than bound into closures, so
// that a call allocates nothing.
//
// Calls on one Blocking must not overlap.
func Do[A any](ctx context.Context, b *Blocking, try, block func(A) error, arg A) error {
	if b.closed.Load() {
		return os.ErrClosed
	}
	err := try(arg)
	if err != unix.EAGAIN {
		return err
	}
	if err := b.stoppedOrCancelled(ctx); err != nil {
		return err
	}
	if err := spinFor(ctx, &b.spin, try, arg); err != unix.EAGAIN {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	gen := b.begin()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() { b.interrupt(gen) })
		defer stop()
	}
	defer b.end()
	for {
		if err := b.stoppedOrCancelled(ctx); err != nil {
			// One last try: what is ready now is taken rather than
			// refused, as a blocking call that lost the race would have.
			if err := try(arg); err != unix.EAGAIN {
				return err
			}
			return b.stoppedOrCancelled(ctx)
		}
		if err := block(arg); err != unix.EINTR {
			return err
		}
	}
}

// begin marks a call in its blocking form on this thread and returns its
// generation, for interrupt.
func (b *Blocking) begin() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	b.active, b.tid = true, unix.Gettid()
	return b.gen
}

// end marks the call's blocking form over.
func (b *Blocking) end() {
	b.mu.Lock()
	b.active = false
	b.mu.Unlock()
}

// stoppedOrCancelled returns why a call must not wait (any longer), if it
// must not.
func (b *Blocking) stoppedOrCancelled(ctx context.Context) error {
	switch {
	case b.closed.Load():
		return os.ErrClosed
	case b.failErr.Load() != nil:
		return *b.failErr.Load()
	}
	return ctx.Err()
}

// interrupt signals the thread of call gen until that call has returned.
// The signal is repeated because it may land just before the thread enters
// the kernel, where it would be missed.
func (b *Blocking) interrupt(gen uint64) {
	pid := unix.Getpid()
	for {
		b.mu.Lock()
		if b.gen != gen || !b.active {
			b.mu.Unlock()
			return
		}
		tid := b.tid
		b.mu.Unlock()
		if b.wake == nil || !b.wake() {
			unix.Tgkill(pid, tid, unix.SIGURG)
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// Close makes the call in progress, and every later one, return
// os.ErrClosed; it returns once the call in progress has returned.
func (b *Blocking) Close() {
	b.closed.Store(true)
	b.mu.Lock()
	gen := b.gen
	b.mu.Unlock()
	b.interrupt(gen)
}

// Fail makes the call in progress, and every later one that would wait,
// return err (the first Fail wins); it returns once the call in progress
// has returned.
func (b *Blocking) Fail(err error) {
	b.failErr.CompareAndSwap(nil, &err)
	b.mu.Lock()
	gen := b.gen
	b.mu.Unlock()
	b.interrupt(gen)
}

// SetMinSpin sets the shortest time a call spins before it blocks, where
// blocking costs much more than spinning (default 2 µs). It must be called
// before the first Do.
func (b *Blocking) SetMinSpin(d time.Duration) {
	b.spin.min = d
	b.spin.budget = max(b.spin.budget, d)
	b.spin.max = max(b.spin.limit(), d)
}

// SpinOnMemory says that the calls' tries read shared memory rather than
// making system calls, so that spinning puts a processor hint between
// tries and reads the clock rarely (see spinFor). It must be called before
// the first Do.
func (b *Blocking) SpinOnMemory() { b.spin.onMemory = true }

// Spin retries try(arg) for b's adaptive spin budget, as Do does before it
// blocks, for a caller that then waits elsewhere (on an FD): it returns
// unix.EAGAIN if try never got through (or ctx ended), else try's result.
// It counts as a call on b: calls must not overlap.
func Spin[A any](ctx context.Context, b *Blocking, try func(A) error, arg A) error {
	return spinFor(ctx, &b.spin, try, arg)
}

// Failure returns the error given to Fail, or nil.
func (b *Blocking) Failure() error {
	if e := b.failErr.Load(); e != nil {
		return *e
	}
	return nil
}

// NewBlocking returns a Blocking whose spin is bounded by maxSpin (zero:
// the default bound, negative: no spinning). wake, if not nil, is how a
// blocked call is interrupted instead of a signal; it may be called
// several times for one interruption. When it returns false (it could not
// wake the call: a futex word in memory that is gone, say), the signal is
// sent instead.
func NewBlocking(maxSpin time.Duration, wake func() bool) *Blocking {
	b := &Blocking{wake: wake}
	switch {
	case maxSpin < 0:
	case maxSpin == 0:
		b.spin = spinner{budget: initialSpin}
	default:
		b.spin = spinner{budget: min(initialSpin, maxSpin), max: maxSpin}
	}
	return b
}
