package endpoints

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
)

// Doorbells (PROTOCOL.md §8): a ring that RingPair makes comes with two
// eventfds, the reader's bell and the writers' bell. A side that parks
// sets its futex word (rwait, wwait) as before and then waits on its bell
// through the runtime poller — no OS thread held, and a Select can wait on
// it with the other cases' descriptors. The other side, finding the word
// set, clears it and both wakes the futex (for waiters without a bell: a
// C program, a writer blocked on a full ring) and rings the bell (writes 1
// to the eventfd). The fast path is unchanged: no system call while the
// word is 0.
//
// The header word bells says that the ring has them: every end must ring
// them, so an end without them is refused. The bells travel with the
// memfd: Attach hands them to a child (IPCCHAN_FILES "name=M+R+W"), and
// within a process an end opened on the same memfd (Sender.File then
// FileSender, MappingFromFile then RingSender) finds them in ringBells.

// bellKey names a ring's memory: the device and inode of its memfd.
type bellKey struct{ dev, ino uint64 }

// bellPair is a ring's two eventfds in this process, shared by its ends
// here (refs counts them).
type bellPair struct {
	rfd, wfd int // the reader's bell, the writers' bell
	refs     int
}

var ringBells struct {
	sync.Mutex
	m map[bellKey]*bellPair
}

// bellKeyOf returns the key of the memory behind f.
func bellKeyOf(f *os.File) (bellKey, bool) {
	if f == nil {
		return bellKey{}, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return bellKey{}, false
	}
	var key bellKey
	serr := error(unix.EBADF)
	rc.Control(func(fd uintptr) { key, serr = bellKeyOfFD(int(fd)) })
	return key, serr == nil
}

// bellKeyOfFD returns the key of the memory behind the descriptor fd.
func bellKeyOfFD(fd int) (bellKey, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return bellKey{}, err
	}
	return bellKey{uint64(st.Dev), st.Ino}, nil
}

// newBells makes a ring's two eventfds.
func newBells() (rfd, wfd int, err error) {
	rfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, -1, fmt.Errorf("eventfd: %w", sys.DescriptorLimit(err))
	}
	wfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(rfd)
		return -1, -1, fmt.Errorf("eventfd: %w", sys.DescriptorLimit(err))
	}
	return rfd, wfd, nil
}

// holdBells registers rfd and wfd as the bells of the ring under key, with
// one reference for the caller (release it with dropBells). If bells are
// registered already, it closes rfd and wfd and holds those.
func holdBells(key bellKey, rfd, wfd int) {
	ringBells.Lock()
	defer ringBells.Unlock()
	if ringBells.m == nil {
		ringBells.m = map[bellKey]*bellPair{}
	}
	if b := ringBells.m[key]; b != nil {
		unix.Close(rfd)
		unix.Close(wfd)
		b.refs++
		return
	}
	ringBells.m[key] = &bellPair{rfd: rfd, wfd: wfd, refs: 1}
}

// takeBells returns a reference to the bells registered under key, or nil.
func takeBells(key bellKey) *bellPair {
	ringBells.Lock()
	defer ringBells.Unlock()
	b := ringBells.m[key]
	if b != nil {
		b.refs++
	}
	return b
}

// dropBells releases a reference taken by holdBells or takeBells; the
// last closes the eventfds.
func dropBells(key bellKey) {
	ringBells.Lock()
	defer ringBells.Unlock()
	b := ringBells.m[key]
	if b == nil {
		return
	}
	if b.refs--; b.refs == 0 {
		unix.Close(b.rfd)
		unix.Close(b.wfd)
		delete(ringBells.m, key)
	}
}

// addBells makes the bells of the ring just formatted in the memfd m and
// marks the ring as having them; the ends opened before release is called
// find them.
func addBells(m *Mapping) (release func(), err error) {
	key, ok := bellKeyOf(m.file)
	if !ok {
		return nil, m.opErr("format ring", fmt.Errorf("cannot identify the memfd"))
	}
	rfd, wfd, err := newBells()
	if err != nil {
		return nil, m.opErr("format ring", err)
	}
	holdBells(key, rfd, wfd)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&m.data[offBells])), 1)
	return func() { dropBells(key) }, nil
}

// attachBells gives r the ring's bells, if its header says it has them:
// its own bell (the reader's for the reader, the writers' for a writer) as
// a poller.FD to wait on, the other as the descriptor it rings. It fails
// if the ring has bells this process does not know.
func (r *ringEnd) attachBells() error {
	if atomic.LoadUint32(r.r.bells) == 0 {
		return nil
	}
	key, ok := bellKeyOf(r.m.file)
	var b *bellPair
	if ok {
		b = takeBells(key)
	}
	if b == nil {
		return fmt.Errorf("%w: the ring's ends wait on eventfd doorbells that came with its memfd, and this process does not have them: hand the end over with endpoints.Pass or Share (IPCCHAN_FILES carries the doorbells), not its bare file", ipcchan.ErrNotSupported)
	}
	own, other := b.rfd, b.wfd
	if r.writer {
		own, other = b.wfd, b.rfd
	}
	nfd, err := dupFD(own)
	if err != nil {
		dropBells(key)
		return fmt.Errorf("the ring's doorbell: %w", err)
	}
	fd, err := poller.Open(nfd, "doorbell of "+r.desc)
	if err != nil {
		dropBells(key)
		return err
	}
	fd.SetReadSpin(0) // the ring end spins on the ring, not on the bell
	r.bell, r.ringFD, r.ownFD, r.bellKey = fd, other, own, key
	r.parkReadFn, r.parkWriteFn = r.parkRead, r.parkWrite
	return nil
}

// bellFiles returns duplicates of the ring's two doorbells (the reader's,
// the writers'), for a child.
func (r *ringEnd) bellFiles() ([]*os.File, error) {
	if !r.enter() {
		return nil, os.ErrClosed
	}
	defer r.leave()
	var own int
	var err error
	r.bell.Control(func(fd int) { own, err = dupFD(fd) })
	if err != nil {
		return nil, fmt.Errorf("the ring's doorbell: %w", err)
	}
	other, err := dupFD(r.ringFD)
	if err != nil {
		unix.Close(own)
		return nil, fmt.Errorf("the ring's doorbell: %w", err)
	}
	rfd, wfd := own, other
	if r.writer {
		rfd, wfd = other, own
	}
	return []*os.File{os.NewFile(uintptr(rfd), "ring doorbell"), os.NewFile(uintptr(wfd), "ring doorbell")}, nil
}

// releaseBells closes r's bell and lets go of the ring's; once no call is
// left (Close).
func (r *ringEnd) releaseBells() {
	if r.bell == nil {
		return
	}
	r.bell.Close()
	dropBells(r.bellKey)
}

// ring wakes the waiters announced on word (rwait or wwait), which was
// found set. It clears the word, rings the bell of word's side, if the
// ring has bells — the reader's for rwait, the writers' for wwait: the
// other side's bell, except for a writer letting go of the lock, which
// rings its own side's (other writers wait on it for the lock) — and wakes
// the futex (waiters without a bell: C peers, ends on rings opened
// without bells). The bell goes first: a Go waiter, on the bell, need not
// wait for a futex call that wakes nobody on a ring whose ends all have
// bells (about 3 µs on the machine measured).
func (r *ringEnd) ring(word *uint32) {
	atomic.StoreUint32(word, 0)
	if r.bell != nil {
		fd := r.ringFD
		if r.writer && word == r.r.wwait {
			fd = r.ownFD
		}
		addToBell(fd, 1)
	}
	sys.FutexWake(word, 1<<30)
}

// drainBell empties the eventfd fd; it returns the count it held.
func drainBell(fd int) uint64 {
	var buf [8]byte
	if n, _ := unix.Read(fd, buf[:]); n != 8 {
		return 0
	}
	return binary.NativeEndian.Uint64(buf[:])
}

// addToBell adds n to the eventfd fd: 1 rings the bell, a count
// drainBell took puts it back for the other waiters on the bell (a Select
// and a Recv on one end, say).
func addToBell(fd int, n uint64) {
	if n == 0 {
		return
	}
	var buf [8]byte
	binary.NativeEndian.PutUint64(buf[:], n)
	unix.Write(fd, buf[:])
}

// parkRead is the operation a parked Recv runs on its bell each time it
// may be readable: a record there ends the wait; otherwise it empties the
// bell, announces the waiter (rwait), and looks once more (a writer may
// have published before it could see rwait) before parking.
func (r *ringEnd) parkRead(fd int) error {
	if err := r.tryRead(); err != unix.EAGAIN {
		return err
	}
	n := drainBell(fd)
	atomic.StoreUint32(r.r.rwait, 1)
	err := r.tryRead()
	if err != unix.EAGAIN {
		addToBell(fd, n)
	}
	return err
}

// bellRead waits for a record on the reader's bell (see bellWait).
func (r *ringEnd) bellRead(ctx context.Context) error {
	return bellWait(ctx, r, (*ringEnd).tryRead, r, func() error { return r.bell.Read(ctx, r.parkReadFn) })
}

// bellWait is the wait of a ring end with doorbells, under the fault guard
// if the mapping needs it: it tries once, spins on the ring as a futex
// wait would, then runs park, which parks the goroutine on the end's bell
// through the runtime poller, holding no OS thread.
func bellWait[A any](ctx context.Context, r *ringEnd, try func(A) error, arg A, park func() error) error {
	return r.m.access(func() error {
		if err := try(arg); err != unix.EAGAIN {
			return err
		}
		if err := r.wait.Failure(); err != nil {
			return err
		}
		if err := poller.Spin(ctx, r.wait, try, arg); err != unix.EAGAIN {
			return err
		}
		return park()
	})
}

// parkWrite is the operation a parked Send runs on the writers' bell each
// time it may be readable, as parkRead does for a Recv: the record
// written ends the wait; otherwise it empties the bell, announces the
// waiter (wwait), and tries once more (the reader may have freed room, or
// the lock holder let go, before it could see wwait) before parking. A
// wait without a deadline that finds another process holding the lock
// ends with errLockHolder, for bellWrite to wait again with one.
func (r *ringEnd) parkWrite(fd int) error {
	w := r.parked
	writerParks.Add(1)
	if err := tryWriteWaiting(w); err != unix.EAGAIN {
		return err
	}
	n := drainBell(fd)
	atomic.StoreUint32(r.r.wwait, 1)
	err := tryWriteWaiting(w)
	if err != unix.EAGAIN {
		addToBell(fd, n)
		return err
	}
	if !r.recheck && r.lockedByOther() {
		return errLockHolder
	}
	return err
}

// writerParks counts the rounds of parked writers (parkWrite, blockWrite):
// tests read it (WriterParks), to see that a parked Send sleeps.
var writerParks atomic.Uint64

// errLockHolder ends a Send's wait on the writers' bell that has no
// deadline when another process holds the write lock: that process may
// die holding it, and then nobody rings.
var errLockHolder = errors.New("the ring's write lock is held by another process")

// tryWriteWaiting is tryWrite for a writer while writers wait (wwait is
// set, by itself too): it takes the lock only if the record may fit. A
// try that takes the lock and finds no room lets go of it ringing the
// writers' bell (step 4 of PROTOCOL.md §8: a writer waiting for the lock
// may fit where this one did not), which wakes every waiting writer —
// itself included — for nothing; each would try, fail and ring again, and
// the waiters would go round waking each other instead of sleeping.
func tryWriteWaiting(w ringWrite) error {
	r := w.r
	if atomic.LoadUint32(r.r.wwait) != 0 && !r.mayFit(w.size()) {
		return unix.EAGAIN
	}
	return tryWrite(w)
}

// lockedByOther reports whether another process holds the write lock.
func (r *ringEnd) lockedByOther() bool {
	owner := atomic.LoadUint32(r.r.lock)
	return owner != 0 && owner != r.pid
}

// bellWrite waits for room for w (and the write lock) on the writers'
// bell (see bellWait). While another process holds the lock, the wait has
// a deadline (writerRecheck): a holder that died rings nobody, so the
// waiter looks at it every 10 ms and takes the lock from a dead one
// (stealIfDead), as blockWrite does on the futex. Close wakes it (the bell
// closes: os.ErrClosed), and so do Fail and ctx.
func (r *ringEnd) bellWrite(ctx context.Context, w ringWrite) error {
	return bellWait(ctx, r, tryWriteWaiting, w, func() error { return r.parkWrites(ctx, w) })
}

// parkWrites parks bellWrite's goroutine on the writers' bell until w is
// written, with a deadline while another process holds the lock.
func (r *ringEnd) parkWrites(ctx context.Context, w ringWrite) (err error) {
	r.parked = w
	defer func() { r.parked = ringWrite{} }()
	for {
		r.stealIfDead()
		r.recheck = r.lockedByOther()
		if r.recheck {
			wctx, cancel := context.WithTimeout(ctx, writerRecheck)
			err = r.bell.Read(wctx, r.parkWriteFn)
			cancel()
		} else {
			err = r.bell.Read(ctx, r.parkWriteFn)
		}
		if err == errLockHolder || err == context.DeadlineExceeded && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// bellRing is a ring end with doorbells: the transport of the ends of a
// ring RingPair made, which a Select waits on through the bell.
type bellRing struct{ *ringEnd }

// SyscallConn lets ipcchan.Select wait on the end's doorbell: readable
// once the ring may have records (a receiver) or room (a sender), for a
// waiter that announced itself with Arm.
func (b bellRing) SyscallConn() (syscall.RawConn, error) { return rawConn{b.bell}, nil }

// Arm announces a waiting Select (see transport.Doorbell): it empties the
// bell, sets the end's futex word so that the other side rings, and
// reports whether the ring may already let the end proceed — a record for
// a receiver; for a sender, the write lock free and room for the record
// its last try could not place (or half the ring free, after which the
// reader rings no more).
func (b bellRing) Arm() (ready bool) {
	r := b.ringEnd
	if !r.enter() {
		return true // closed: the next try says so
	}
	defer r.leave()
	err := r.m.access(func() error {
		var n uint64
		b.bell.Control(func(fd int) { n = drainBell(fd) })
		word := r.r.rwait
		if r.writer {
			word = r.r.wwait
			// A holder that died rings nobody: take its lock back, as a
			// blocked Send does (a Select has no deadline to look again).
			r.stealIfDead()
		}
		atomic.StoreUint32(word, 1)
		ready = r.mayProceed()
		if ready {
			b.bell.Control(func(fd int) { addToBell(fd, n) })
		}
		return nil
	})
	return ready || err != nil
}

// mayProceed reports whether a try of the end may succeed now.
func (r *ringEnd) mayProceed() bool {
	if !r.writer {
		return atomic.LoadUint64(r.r.head) != atomic.LoadUint64(r.r.tail)
	}
	return r.mayFit(int(r.wantRoom.Load()))
}

// mayFit reports whether a writer's try may place a record of n payload
// bytes now: the write lock is free and the ring has room for it (or is
// at most half full, after which the reader rings no more).
func (r *ringEnd) mayFit(n int) bool {
	rm := r.r
	head := atomic.LoadUint64(rm.head)
	tail := atomic.LoadUint64(rm.tail)
	if atomic.LoadUint32(rm.lock) != 0 {
		return false
	}
	used := head - tail
	if used > rm.capacity || used <= rm.capacity/2 {
		return true // corruption is for the try to report
	}
	size := recordSize(n)
	i := head & rm.mask
	if i+size > rm.capacity {
		size += rm.capacity - i
	}
	return used+size <= rm.capacity
}
