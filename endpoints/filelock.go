package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/ipcchan/internal/ctxlock"
	"github.com/ipcchan/ipcchan/ipcchan"
)

// LockKind says which kind of file lock a [FileLock] takes.
type LockKind int

const (
	// OFDLocks are fcntl record locks owned by the open file description
	// (F_OFD_SETLK): byte ranges, shared or exclusive; they exclude and
	// are excluded by the classic POSIX locks of other programs (lockf,
	// Python's fcntl.lockf) and, unlike those, behave as expected between
	// goroutines and FileLocks of one process. The default.
	OFDLocks LockKind = iota

	// Flock locks the whole file with flock(2), as flock(1) does; flock
	// and fcntl locks do not see each other.
	Flock

	// POSIXLocks are classic per-process fcntl locks (F_SETLK), for
	// programs that insist. Caveats: they belong to the process, not the
	// FileLock, so two FileLocks of one process never exclude each other,
	// and closing any descriptor of the file in this process drops them all.
	POSIXLocks
)

// FileLock is a lock on a file shared with other processes and programs.
// Lock, RLock and their range forms wait with a context; TryLock does not
// wait; Unlock releases. A lock is released by the kernel when its holder
// dies (its descriptor closes), so a crashed holder never blocks others.
// FileLock's methods are safe for concurrent use. Within a process a
// FileLock is held by one goroutine at a time, like a sync.Mutex, whatever
// it took (exclusive or shared, the whole file or a range): the kernel sees
// one owner per open file, so without this two goroutines could both
// "hold" an exclusive lock. A goroutine that already holds it must Unlock
// before it locks again. Goroutines that want to share a read lock open the
// file each (OpenLock once per goroutine).
//
// Waiting: file locks have no descriptor to wait on, and a blocking
// F_OFD_SETLKW or flock would hold a thread that a signal cannot reliably
// free under Go's SA_RESTART handlers. So a wait retries the non-blocking
// form: back to back for about 50 µs, then with sleeps doubling from 50 µs
// to 1 ms. A released lock is seen within a millisecond; cancellation is
// observed within one sleep, and a cancelled Lock has taken nothing.
type FileLock struct {
	f    *os.File
	fd   int
	kind LockKind
	desc string

	owner     ctxlock.Mutex // held from a successful lock call to its Unlock
	closed    chan struct{} // closed by Close: ends waits for the owner lock and for the file's lock
	closeOnce sync.Once

	mu   sync.Mutex // guards f and held; serializes attempts
	held bool
}

// OpenLock opens (creating it, mode 0600 or ipcchan.WithPerm, if needed)
// the file at path to lock. A symbolic link at path is refused.
func OpenLock(path string, kind LockKind, opts ...ipcchan.Option) (*FileLock, error) {
	desc := "lock " + path
	perm := uint32(ipcchan.NewConfig(opts...).FilePerm().Perm())
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: desc, Err: err}
	}
	return &FileLock{f: os.NewFile(uintptr(fd), path), fd: fd, kind: kind, desc: desc, closed: make(chan struct{})}, nil
}

// errBusy is what an attempt reports when another holder has the lock.
var errBusy = errors.New("busy")

// attempt tries once to take (typ F_RDLCK or F_WRLCK) or release (F_UNLCK)
// the range.
func (l *FileLock) attempt(typ int16, off, n int64) error {
	var err error
	switch l.kind {
	case Flock:
		how := unix.LOCK_EX
		switch typ {
		case unix.F_RDLCK:
			how = unix.LOCK_SH
		case unix.F_UNLCK:
			how = unix.LOCK_UN
		}
		err = unix.Flock(l.fd, how|unix.LOCK_NB)
	default:
		cmd := unix.F_OFD_SETLK
		if l.kind == POSIXLocks {
			cmd = unix.F_SETLK
		}
		lk := unix.Flock_t{Type: typ, Whence: 0, Start: off, Len: n}
		err = unix.FcntlFlock(uintptr(l.fd), cmd, &lk)
	}
	if err == unix.EWOULDBLOCK || err == unix.EAGAIN || err == unix.EACCES {
		return errBusy
	}
	return err
}

// wait retries attempt until it succeeds, ctx ends or Close is called
// (os.ErrClosed). The caller holds l.mu, which Close waits for.
func (l *FileLock) wait(ctx context.Context, typ int16, off, n int64) error {
	start := time.Now()
	sleep := 50 * time.Microsecond
	for {
		err := l.attempt(typ, off, n)
		if err != errBusy {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-l.closed:
			return os.ErrClosed
		default:
		}
		if time.Since(start) < 50*time.Microsecond {
			runtime.Gosched()
			continue
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-l.closed:
			t.Stop()
			return os.ErrClosed
		case <-t.C:
		}
		sleep = min(2*sleep, time.Millisecond)
	}
}

// made reports whether OpenLock made l.
func (l *FileLock) made() bool { return l != nil && l.desc != "" }

func (l *FileLock) lock(ctx context.Context, typ int16, off, n int64) error {
	switch {
	case !l.made():
		return errNotMade("lock", "FileLock", "OpenLock")
	case ctx == nil:
		return &ipcchan.OpError{Op: "lock", Endpoint: l.desc, Err: errNilContext}
	case l.kind == Flock && (off != 0 || n != 0):
		return &ipcchan.OpError{Op: "lock", Endpoint: l.desc, Err: fmt.Errorf("%w: flock locks whole files", ipcchan.ErrNotSupported)}
	}
	if err := l.owner.Lock(ctx, l.closed); err != nil {
		return ipcchan.WrapError("lock", l.desc, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		l.owner.Unlock()
		return &ipcchan.OpError{Op: "lock", Endpoint: l.desc, Err: os.ErrClosed}
	}
	if err := l.wait(ctx, typ, off, n); err != nil {
		l.owner.Unlock()
		if err == context.Canceled || err == context.DeadlineExceeded {
			return err
		}
		return &ipcchan.OpError{Op: "lock", Endpoint: l.desc, Err: err}
	}
	l.held = true
	return nil
}

// tryLock takes the whole file (typ F_RDLCK or F_WRLCK) if nobody holds it
// now, in this process or another.
func (l *FileLock) tryLock(typ int16) bool {
	if !l.made() || !l.owner.TryLock() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil || l.attempt(typ, 0, 0) != nil {
		l.owner.Unlock()
		return false
	}
	l.held = true
	return true
}

// Lock takes the whole file exclusively, waiting; it returns ctx.Err() if
// ctx ends first, holding nothing.
func (l *FileLock) Lock(ctx context.Context) error { return l.lock(ctx, unix.F_WRLCK, 0, 0) }

// RLock takes the whole file shared, waiting.
func (l *FileLock) RLock(ctx context.Context) error { return l.lock(ctx, unix.F_RDLCK, 0, 0) }

// LockRange takes bytes [off, off+n) (n 0: to the end, however the file
// grows), exclusively or shared, waiting. Flock locks refuse ranges.
func (l *FileLock) LockRange(ctx context.Context, off, n int64, exclusive bool) error {
	typ := int16(unix.F_RDLCK)
	if exclusive {
		typ = unix.F_WRLCK
	}
	return l.lock(ctx, typ, off, n)
}

// TryLock takes the whole file exclusively if it is free now.
func (l *FileLock) TryLock() bool { return l.tryLock(unix.F_WRLCK) }

// TryRLock takes the whole file shared if it can now.
func (l *FileLock) TryRLock() bool { return l.tryLock(unix.F_RDLCK) }

// ErrNotLocked is wrapped by the error of Unlock on a FileLock that holds
// nothing.
var ErrNotLocked = errors.New("not locked")

// Unlock releases what the FileLock holds (every range).
func (l *FileLock) Unlock() error {
	if !l.made() {
		return errNotMade("unlock", "FileLock", "OpenLock")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.held {
		return &ipcchan.OpError{Op: "unlock", Endpoint: l.desc, Err: ErrNotLocked}
	}
	if err := l.attempt(unix.F_UNLCK, 0, 0); err != nil {
		return &ipcchan.OpError{Op: "unlock", Endpoint: l.desc, Err: err}
	}
	l.held = false
	l.owner.Unlock()
	return nil
}

// Locker returns a sync.Locker on the exclusive lock, for code that wants
// one: its Lock waits without a context, and it panics if Unlock fails.
func (l *FileLock) Locker() sync.Locker { return fileLocker{l} }

type fileLocker struct{ l *FileLock }

func (f fileLocker) Lock() {
	if err := f.l.Lock(context.Background()); err != nil {
		panic(err)
	}
}

func (f fileLocker) Unlock() {
	if err := f.l.Unlock(); err != nil {
		panic(err)
	}
}

// File returns the locked file, to read and write under the lock. (With
// POSIXLocks, closing another descriptor of it drops the lock.)
func (l *FileLock) File() *os.File {
	if l == nil {
		return nil
	}
	return l.f
}

// Close releases the lock and the file. A Lock waiting meanwhile, for
// this FileLock or for another holder of the file's lock, returns an error
// wrapping os.ErrClosed.
func (l *FileLock) Close() error {
	if !l.made() {
		return errNotMade("close", "FileLock", "OpenLock")
	}
	// Ends the waits first: a Lock waiting for another process holds mu.
	l.closeOnce.Do(func() { close(l.closed) })
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close() // the kernel drops the lock with the descriptor
	if l.held {
		l.owner.Unlock()
	}
	l.f, l.held = nil, false
	return ipcchan.WrapError("close", l.desc, err)
}
