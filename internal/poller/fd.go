package poller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/ctxlock"
)

// aLongTimeAgo is a deadline in the past, used to wake a parked call.
var aLongTimeAgo = time.Unix(1, 0)

// FD is a non-blocking file descriptor registered with the runtime poller.
//
// Every method is safe for concurrent use. An FD serializes its own calls
// in each direction, as the standard library's internal/poll does: a Read
// (or TryRead) runs while no other read is in progress, a Write while no
// other write is, and a read and a write may overlap. A Read waiting for
// another goroutine's Read to finish gives up when its context ends or the
// FD closes; TryRead finding one in progress returns unix.EAGAIN.
type FD struct {
	name   string
	file   *os.File
	rc     syscall.RawConn
	closed atomic.Bool
	failed atomic.Pointer[error] // set by Fail

	// rdDone is closed by Close, wrDone by Close or StopWrites: they wake
	// calls waiting for their turn.
	rdDone, wrDone chan struct{}
	wrDoneOnce     sync.Once
	wrStopped      atomic.Bool // set by StopWrites

	rdLock, wrLock ctxlock.Mutex // one call in flight per direction
	rd, wr         waiter

	// Queued's state, bound once so that a call allocates nothing.
	queuedMu  sync.Mutex
	queuedFn  func(uintptr)
	queuedReq uint
	queued    int
}

// Open takes ownership of fd, puts it into non-blocking mode and registers
// it with the runtime poller. name describes the descriptor in errors. On
// error fd is closed.
//
// A descriptor the runtime poller cannot watch (a regular file, for example)
// is refused with an error wrapping [ErrNotPollable].
func Open(fd int, name string) (*FD, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set non-blocking: %w", err)
	}
	file := os.NewFile(uintptr(fd), name)
	if file == nil {
		unix.Close(fd)
		return nil, fmt.Errorf("invalid descriptor %d", fd)
	}
	// A pollable file accepts deadlines; a file the poller refused does not.
	if err := file.SetReadDeadline(time.Time{}); err != nil {
		file.Close()
		return nil, fmt.Errorf("%w: %s", ErrNotPollable, name)
	}
	rc, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, err
	}
	p := &FD{name: name, file: file, rc: rc, rdDone: make(chan struct{}), wrDone: make(chan struct{})}
	p.rd.init(p, file.SetReadDeadline, rc.Read, nil)
	p.wr.init(p, file.SetWriteDeadline, rc.Write, &p.wrStopped)
	p.rd.spin = &spinner{budget: initialSpin}
	p.wr.spin = &spinner{budget: initialSpin}
	p.queuedFn = p.readQueued
	return p, nil
}

// Queued returns the byte count the ioctl req reports, or 0 if it fails:
// unix.TIOCINQ (FIONREAD) gives the bytes waiting in a pipe, unix.TIOCOUTQ
// (SIOCOUTQ) those a socket has sent that its peer has not taken.
func (p *FD) Queued(req uint) int {
	p.queuedMu.Lock()
	defer p.queuedMu.Unlock()
	p.queued, p.queuedReq = 0, req
	p.rc.Control(p.queuedFn)
	return p.queued
}

func (p *FD) readQueued(fd uintptr) {
	if n, err := unix.IoctlGetInt(int(fd), p.queuedReq); err == nil {
		p.queued = n
	}
}

// SetReadSpin sets the longest time Read spins, retrying, before it parks;
// zero turns spinning off. Within that bound the actual time adapts to how
// often spinning pays off. Call it before the first Read.
func (p *FD) SetReadSpin(max time.Duration) {
	if max <= 0 {
		p.rd.spin = nil
		return
	}
	p.rd.spin = &spinner{budget: min(initialSpin, max), max: max}
}

// ErrNotPollable is wrapped by the error [Open] returns for a descriptor the
// runtime poller cannot watch.
var ErrNotPollable = errors.New("descriptor cannot be polled")

// Name returns the name given to Open.
func (p *FD) Name() string { return p.name }

// Read calls op with the descriptor until op returns something other than
// unix.EAGAIN, waiting for readability in between. It returns op's final
// error, ctx.Err() if ctx ends first, or os.ErrClosed if p is closed.
// op runs at least once, even if ctx is already done, so that ready data is
// never refused; callers that must not act on a cancelled context check it
// themselves first.
//
// Reads are serialized: a Read first waits for any other read in progress
// to finish, giving up with ctx.Err() or os.ErrClosed.
func (p *FD) Read(ctx context.Context, op func(fd int) error) error {
	return p.run(ctx, &p.rdLock, p.rdDone, &p.rd, op)
}

// Write is Read for writability; writes are serialized among themselves.
// After StopWrites it returns os.ErrClosed without calling op.
func (p *FD) Write(ctx context.Context, op func(fd int) error) error {
	return p.run(ctx, &p.wrLock, p.wrDone, &p.wr, op)
}

func (p *FD) run(ctx context.Context, l *ctxlock.Mutex, done chan struct{}, w *waiter, op func(int) error) error {
	if w.isStopped() {
		return os.ErrClosed
	}
	if err := l.Lock(ctx, done); err != nil {
		return err
	}
	defer l.Unlock()
	if w.isStopped() {
		return os.ErrClosed
	}
	return w.run(ctx, op)
}

// TryRead calls op once, without waiting. It returns op's error (unix.EAGAIN
// included), unix.EAGAIN if another read is in progress, or os.ErrClosed.
func (p *FD) TryRead(op func(fd int) error) error { return p.try(&p.rdLock, &p.rd, op) }

// TryWrite calls op once, without waiting; see TryRead.
func (p *FD) TryWrite(op func(fd int) error) error { return p.try(&p.wrLock, &p.wr, op) }

func (p *FD) try(l *ctxlock.Mutex, w *waiter, op func(int) error) error {
	if !l.TryLock() {
		if p.closed.Load() || w.isStopped() {
			return os.ErrClosed
		}
		return unix.EAGAIN
	}
	defer l.Unlock()
	if w.isStopped() {
		return os.ErrClosed
	}
	return w.try(op)
}

// StopWrites ends writing on p, leaving the descriptor open for Control
// (to post a last message around the poller, say): Write and TryWrite
// return os.ErrClosed from now on, a Write waiting for room returns
// os.ErrClosed at once having written nothing more, and StopWrites returns
// once no write is in progress. It is idempotent.
func (p *FD) StopWrites() {
	p.wrStopped.Store(true)
	p.wrDoneOnce.Do(func() { close(p.wrDone) })
	p.file.SetWriteDeadline(aLongTimeAgo) // wakes a parked Write
	if p.wrLock.Lock(context.Background(), p.rdDone) == nil {
		p.wrLock.Unlock()
	}
}

// Control calls f with the descriptor, which stays open for the duration of
// the call. It returns os.ErrClosed if p is closed.
func (p *FD) Control(f func(fd int)) error {
	err := p.rc.Control(func(fd uintptr) { f(int(fd)) })
	return p.mapErr(err)
}

// Dup returns a new descriptor for the same open file description, with
// close-on-exec set. The caller owns it.
func (p *FD) Dup() (int, error) {
	nfd := -1
	var derr error
	if err := p.Control(func(fd int) {
		nfd, derr = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return nfd, derr
}

// Close closes the descriptor. Calls blocked in Read or Write return
// os.ErrClosed; Close waits until they have let go of the descriptor. Close
// is idempotent: later calls return nil.
func (p *FD) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	close(p.rdDone)
	p.wrDoneOnce.Do(func() { close(p.wrDone) })
	return p.file.Close()
}

// Fail makes every call that would otherwise wait return err from now on:
// calls parked now are woken, and later ones still complete while the
// descriptor is ready (data already queued is read), returning err only
// where they would park. It reports a peer known to be gone on transports
// where the kernel says nothing. The first Fail wins; Fail is safe for
// concurrent use.
func (p *FD) Fail(err error) {
	if !p.failed.CompareAndSwap(nil, &err) {
		return
	}
	p.file.SetDeadline(aLongTimeAgo)
}

// Failure returns the error given to Fail, or nil.
func (p *FD) Failure() error { return p.failure() }

func (p *FD) failure() error {
	if e := p.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// Closed reports whether Close has been called.
func (p *FD) Closed() bool { return p.closed.Load() }

func (p *FD) mapErr(err error) error {
	if err != nil && p.closed.Load() {
		return os.ErrClosed
	}
	return err
}

// waiter holds the state of the one call in flight in one direction (the
// FD's lock for that direction keeps it to one). Its
// step method is bound once, so a call allocates nothing unless it must arm
// a cancellable context.
type waiter struct {
	p           *FD
	setDeadline func(time.Time) error
	rawWait     func(func(uintptr) bool) error
	stepFn      func(uintptr) bool
	tryFn       func(uintptr)
	tryOpFn     func(func(int) error) error // w.try, bound once
	spin        *spinner                    // nil: park at the first EAGAIN
	stopped     *atomic.Bool                // set: calls return os.ErrClosed (StopWrites); nil for reads

	// Per call; owned by the calling goroutine.
	ctx   context.Context
	op    func(int) error
	err   error
	stop  func() bool
	armed bool

	// Shared with the AfterFunc that expires the deadline.
	mu      sync.Mutex
	gen     uint64 // call generation; an expiry for an older call is ignored
	expired bool   // a deadline in the past is set for the current call
}

func (w *waiter) init(p *FD, setDeadline func(time.Time) error, rawWait func(func(uintptr) bool) error, stopped *atomic.Bool) {
	w.p, w.setDeadline, w.rawWait, w.stopped = p, setDeadline, rawWait, stopped
	w.stepFn = w.step
	w.tryFn = w.tryStep
	w.tryOpFn = w.try
}

func (w *waiter) isStopped() bool { return w.stopped != nil && w.stopped.Load() }

func (w *waiter) try(op func(int) error) error {
	w.op = op
	err := w.p.rc.Control(w.tryFn)
	w.op = nil
	if err != nil {
		return w.p.mapErr(err)
	}
	return w.err
}

// tryStep runs the operation once for try.
func (w *waiter) tryStep(fd uintptr) {
	w.err = w.op(int(fd))
	for w.err == unix.EINTR {
		w.err = w.op(int(fd))
	}
}

func (w *waiter) run(ctx context.Context, op func(int) error) error {
	if w.spin != nil {
		if err := spinFor(ctx, w.spin, w.tryOpFn, op); err != unix.EAGAIN {
			return err
		}
	}
	w.ctx, w.op, w.err, w.armed = ctx, op, nil, false
	for {
		err := w.rawWait(w.stepFn)
		if err == nil {
			err = w.err
			w.disarm()
			w.ctx, w.op = nil, nil
			return err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if w.isStopped() {
				w.disarm()
				w.ctx, w.op = nil, nil
				return os.ErrClosed
			}
			if ferr := w.p.failure(); ferr != nil {
				w.disarm()
				w.ctx, w.op = nil, nil
				return ferr
			}
			if cerr := ctx.Err(); cerr != nil {
				w.disarm()
				w.ctx, w.op = nil, nil
				return cerr
			}
			// A stale expiry: clear it and wait again.
			w.clearExpired()
			continue
		}
		w.disarm()
		w.ctx, w.op = nil, nil
		return w.p.mapErr(err)
	}
}

// step is called by the runtime with the descriptor each time it may be
// ready; returning false parks the goroutine until the next readiness event.
func (w *waiter) step(fd uintptr) bool {
	w.err = w.op(int(fd))
	for w.err == unix.EINTR {
		w.err = w.op(int(fd))
	}
	if w.err != unix.EAGAIN {
		return true
	}
	if w.isStopped() {
		w.err = os.ErrClosed
		return true
	}
	if ferr := w.p.failure(); ferr != nil {
		w.err = ferr
		return true
	}
	if w.armed || w.ctx.Done() == nil {
		return false
	}
	if err := w.ctx.Err(); err != nil {
		w.err = err
		return true
	}
	w.arm()
	return false
}

func (w *waiter) arm() {
	w.mu.Lock()
	w.gen++
	gen := w.gen
	w.mu.Unlock()
	w.armed = true
	w.stop = context.AfterFunc(w.ctx, func() { w.expire(gen) })
}

func (w *waiter) expire(gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen != gen {
		return
	}
	w.expired = true
	w.setDeadline(aLongTimeAgo)
}

// disarm ends the current call's cancellation and clears any deadline it set.
func (w *waiter) disarm() {
	if !w.armed {
		return
	}
	w.armed = false
	w.stop()
	w.mu.Lock()
	w.gen++ // an expiry still on its way now belongs to no call
	if w.expired {
		w.expired = false
		w.setDeadline(time.Time{})
	}
	w.mu.Unlock()
}

// clearExpired removes a deadline that woke the current call although its
// context is still live (one left from an earlier call).
func (w *waiter) clearExpired() {
	w.mu.Lock()
	w.expired = false
	w.setDeadline(time.Time{})
	w.mu.Unlock()
}
