package endpoints

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/ctxlock"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
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
	f     *os.File
	fd    int
	kind  LockKind
	desc  string
	path  string            // absolute: where the lock file must still be
	cpath []byte            // path, NUL-terminated, to check it without allocating
	id    sys.FileID        // the file f is
	perm  uint32            // for a lock file made again
	cfg   *transport.Config // whose files are trusted

	file atomic.Pointer[os.File] // what File returns

	owner     ctxlock.Mutex // held from a successful lock call to its Unlock
	closed    chan struct{} // closed by Close: ends waits for the owner lock and for the file's lock
	closeOnce sync.Once

	mu   sync.Mutex // guards f, fd and held; serializes attempts
	held bool
}

// OpenLock opens (creating it, mode 0600 or ipcchan.WithPerm whatever the
// umask, if needed) the file at path to lock. It refuses, before opening anything, a symbolic
// link (wrapping unix.ELOOP) and anything but a regular file (a FIFO, a
// device: wrapping fs.ErrExist); and it refuses a file owned by another
// user (wrapping fs.ErrPermission), root's included, since whoever can make
// the file can make the lock exclude nobody: pass
// ipcchan.WithTrustedOwners(uid) to share a lock file that user made on
// purpose (WithTrustedOwners(0) for root's, in /run/lock say).
//
// The lock is on the file, but the path is what processes agree on: each
// lock call checks, once it holds the lock, that the file is still the one
// at path, and if the file was removed or replaced since (its owner removed
// it, another made it again) moves to the file now at path, making one if
// none is there and refusing it as OpenLock would. So FileLocks on one
// path exclude each other even when a holder removes the lock file before
// it unlocks. The error of every call is an *ipcchan.OpError. Options:
// WithPerm (for a file it makes) and WithTrustedOwners.
func OpenLock(path string, kind LockKind, opts ...ipcchan.Option) (*FileLock, error) {
	desc := "lock " + path
	cfg, err := newConfig("open", desc, optCreate|transport.OptTrustedOwners, opts)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	perm := uint32(cfg.Perm().Perm())
	f, err := openLockFile(abs, perm, cfg)
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	id, err := sys.FstatID(int(f.Fd()))
	if err != nil {
		f.Close()
		return nil, opErr("open", desc, err)
	}
	l := &FileLock{f: f, fd: int(f.Fd()), kind: kind, desc: desc, path: abs, cpath: append([]byte(abs), 0), id: id, perm: perm, cfg: cfg, closed: make(chan struct{})}
	l.file.Store(f)
	return l, nil
}

// openLockFile opens or creates the lock file at path, never following a
// symbolic link, never opening anything but a regular file (a FIFO or a
// device could block or act when opened), and only a file this user, or
// one cfg trusts, owns.
func openLockFile(path string, perm uint32, cfg *transport.Config) (*os.File, error) {
	var st unix.Stat_t
	missing := false
	if err := unix.Lstat(path, &st); err == nil {
		if err := checkLockFile(path, &st, cfg); err != nil {
			return nil, err
		}
	} else if err == unix.ENOENT {
		missing = true
	} else {
		return nil, err
	}
	// O_NONBLOCK: should a FIFO be swapped in after the look, the open
	// does not wait for a writer; the type is checked again below.
	flags := unix.O_RDWR | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_CLOEXEC
	fd, err := -1, error(unix.EEXIST)
	made := false
	if missing {
		fd, err = unix.Open(path, flags|unix.O_EXCL, perm)
		made = err == nil
	}
	if err == unix.EEXIST {
		fd, err = unix.Open(path, flags, perm)
	}
	if err == unix.ELOOP {
		return nil, fmt.Errorf("%s is a symbolic link: refusing to follow it (%w)", path, err)
	}
	if err != nil {
		return nil, err
	}
	err = unix.Fstat(fd, &st)
	if err == nil {
		err = checkLockFile(path, &st, cfg)
	}
	if err == nil {
		err = unix.SetNonblock(fd, false)
	}
	if err == nil && made {
		err = unix.Fchmod(fd, perm) // whatever the umask took away
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// checkLockFile refuses, as a lock file, what st describes unless it is a
// regular file owned by this user or one cfg trusts.
func checkLockFile(path string, st *unix.Stat_t, cfg *transport.Config) error {
	switch typ := st.Mode & unix.S_IFMT; {
	case typ == unix.S_IFLNK:
		return fmt.Errorf("%s is a symbolic link: refusing to follow it (%w)", path, unix.ELOOP)
	case typ != unix.S_IFREG:
		return fmt.Errorf("%w: %s is a %s, not a regular file: refusing it as a lock file (remove it or lock another path)", fs.ErrExist, path, fileType(st.Mode))
	case !cfg.Trusts(int(st.Uid)):
		return fmt.Errorf("%w: %s belongs to uid %d, not to this user (uid %d): refusing a lock file another user could have planted; remove it, or pass ipcchan.WithTrustedOwners(%d) if that user shares it on purpose",
			fs.ErrPermission, path, st.Uid, os.Geteuid(), st.Uid)
	}
	return nil
}

// maxReplaced bounds how many times one lock call follows the lock file to
// a new file at its path.
const maxReplaced = 100

// take takes the range (typ F_RDLCK or F_WRLCK) on the file at l.path:
// waiting with ctx, or trying once if try is set. Once it holds the lock it
// checks that the path still names the locked file; if the file was
// removed or replaced, what it holds protects nothing, so it releases it,
// opens the file now at the path and goes again. l.mu is held.
func (l *FileLock) take(ctx context.Context, try bool, typ int16, off, n int64) error {
	for range maxReplaced {
		var err error
		if try {
			err = l.attempt(typ, off, n)
		} else {
			err = l.wait(ctx, typ, off, n)
		}
		if err != nil {
			return err
		}
		now, err := sys.LstatID(l.cpath)
		if err == nil && now == l.id {
			return nil
		}
		l.attempt(unix.F_UNLCK, 0, 0)
		if err != nil && err != unix.ENOENT {
			return err
		}
		f, err := openLockFile(l.path, l.perm, l.cfg)
		if err != nil {
			return fmt.Errorf("the lock file was removed or replaced: %w", err)
		}
		id, err := sys.FstatID(int(f.Fd()))
		if err != nil {
			f.Close()
			return err
		}
		l.f.Close()
		l.f, l.fd, l.id = f, int(f.Fd()), id
		l.file.Store(f)
	}
	return fmt.Errorf("the lock file %s was removed or replaced %d times while this process locked it: remove a lock file only while holding its lock, and not while others keep using it", l.path, maxReplaced)
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
		return transport.WrapError("lock", l.desc, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		l.owner.Unlock()
		return &ipcchan.OpError{Op: "lock", Endpoint: l.desc, Err: os.ErrClosed}
	}
	if err := l.take(ctx, false, typ, off, n); err != nil {
		l.owner.Unlock()
		if err == context.Canceled || err == context.DeadlineExceeded {
			return err
		}
		return opErr("lock", l.desc, err)
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
	if l.f == nil || l.take(context.Background(), true, typ, 0, 0) != nil {
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
// grows) exclusively, waiting. Flock locks refuse ranges.
func (l *FileLock) LockRange(ctx context.Context, off, n int64) error {
	return l.lock(ctx, unix.F_WRLCK, off, n)
}

// RLockRange takes bytes [off, off+n) shared, waiting; see LockRange.
func (l *FileLock) RLockRange(ctx context.Context, off, n int64) error {
	return l.lock(ctx, unix.F_RDLCK, off, n)
}

// TryLock takes the whole file exclusively if it is free now.
func (l *FileLock) TryLock() bool { return l.tryLock(unix.F_WRLCK) }

// TryRLock takes the whole file shared if it can now.
func (l *FileLock) TryRLock() bool { return l.tryLock(unix.F_RDLCK) }

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
		return opErr("unlock", l.desc, err)
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

// File returns the locked file, to read and write under the lock (nil
// after Close). Call it once the lock is taken: a lock call that found the
// file at the path replaced locks the new file and closes the old one.
// (With POSIXLocks, closing another descriptor of it drops the lock.)
func (l *FileLock) File() *os.File {
	if l == nil {
		return nil
	}
	return l.file.Load()
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
	l.file.Store(nil)
	return transport.WrapError("close", l.desc, err)
}
