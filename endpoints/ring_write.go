package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// The writing end of a ring: the shared write lock, room, and publishing a
// record (see ring_layout.go for the layout and PROTOCOL.md §7 for the
// protocol).

// tryLock takes the ring's write lock, shared by every sender process: a
// compare-and-swap of this process's pid into the lock word. It gives up
// after a few attempts, for the caller to wait like for room.
func (r *ringEnd) tryLock() bool {
	for range 8 {
		if atomic.CompareAndSwapUint32(r.r.lock, 0, r.pid) {
			return true
		}
		runtime.Gosched()
	}
	return false
}

// stealIfDead frees the write lock if the process holding it has exited —
// a zombie its parent has not reaped yet included. Since that process never
// advanced head, what it was writing is simply lost, never torn.
// It reports whether it freed it.
func (r *ringEnd) stealIfDead() bool {
	owner := atomic.LoadUint32(r.r.lock)
	return owner != 0 && owner != r.pid && !sys.ProcessRunning(int(owner)) &&
		atomic.CompareAndSwapUint32(r.r.lock, owner, 0)
}

// unlockWriters frees the write lock and wakes the writers parked for it.
func (r *ringEnd) unlockWriters() {
	atomic.StoreUint32(r.r.lock, 0)
	if atomic.LoadUint32(r.r.wwait) != 0 {
		r.ring(r.r.wwait)
	}
}

// reserve finds room for a record of n payload bytes, padding to the end
// of the data area if it would straddle it, and returns its position; the
// write lock is held. It returns unix.EAGAIN when the ring is full.
func (r *ringEnd) reserve(n int) (uint64, error) {
	rm := r.r
	head := atomic.LoadUint64(rm.head)
	size := recordSize(n)
	i := head & rm.mask
	pad := uint64(0)
	if i+size > rm.capacity {
		pad = rm.capacity - i
	}
	// The tail read last time usually shows enough room; only when it
	// does not is the reader's cache line read again.
	used := head - r.tailSeen.Load()
	if used > rm.capacity || used+pad+size > rm.capacity {
		tail := atomic.LoadUint64(rm.tail)
		r.tailSeen.Store(tail)
		var err error
		if used, err = rm.span(head, tail); err != nil {
			return 0, err
		}
		if used+pad+size > rm.capacity {
			r.wantRoom.Store(uint32(n))
			return 0, unix.EAGAIN
		}
	}
	if pad > 0 {
		atomic.StoreUint32(rm.word(i), recPad)
		head += pad
		atomic.StoreUint64(rm.head, head) // the reader may skip the pad now
	}
	return head, nil
}

// publish makes the record at pos, of n payload bytes, visible and wakes a
// parked reader.
func (r *ringEnd) publish(pos uint64, n int, flags, tag uint32) {
	rm := r.r
	i := pos & rm.mask
	*(*uint32)(unsafe.Pointer(&rm.data[i+4])) = tag
	atomic.StoreUint32(rm.word(i), flags|uint32(n))
	atomic.StoreUint64(rm.head, pos+recordSize(n))
	if atomic.LoadUint32(rm.rwait) != 0 {
		r.ring(rm.rwait)
	}
}

// ringWrite is one record to write: the argument of a send's tries. The
// record is msg, or, with fill (SendInPlace), what fill writes into room
// for n bytes.
type ringWrite struct {
	r    *ringEnd
	tag  uint32
	msg  []byte
	n    int
	fill func([]byte) (int, error)
}

// size is the payload length of w's record.
func (w ringWrite) size() int {
	if w.fill != nil {
		return w.n
	}
	return len(w.msg)
}

// tryWrite writes w's record, or returns unix.EAGAIN when the ring is full
// (or locked by another writer). A fill runs with the write lock held, in
// the record's room; if it fails, the record is abandoned and its error
// returned as a *fillError.
func tryWrite(w ringWrite) error {
	r := w.r
	if !r.tryLock() {
		return unix.EAGAIN
	}
	defer r.unlockWriters()
	n := w.size()
	pos, err := r.reserve(n)
	if err != nil {
		return err
	}
	i := pos & r.r.mask
	room := r.r.data[i+recHeader : i+recHeader+uint64(n) : i+recHeader+uint64(n)]
	if w.fill == nil {
		copy(room, w.msg)
	} else {
		m, err := w.fill(room)
		if err == nil {
			err = transport.CheckFilled(m, n)
		}
		if err != nil {
			return &fillError{err}
		}
		n = m
	}
	r.publish(pos, n, 0, w.tag)
	return nil
}

// stealThenWrite frees the lock from a dead holder and tries w again; it
// returns unix.EAGAIN, trying nothing, if the holder is alive or there is
// none (the ring was full).
func stealThenWrite(w ringWrite) error {
	if !w.r.stealIfDead() {
		return unix.EAGAIN
	}
	return tryWriteWaiting(w)
}

// fillError carries the error of SendInPlace's fill out of the tries.
type fillError struct{ err error }

func (e *fillError) Error() string { return e.err.Error() }

// blockWrite parks on the wwait futex, holding its OS thread, until the
// reader frees room or the lock is released (or an interrupt): the wait of
// a ring without doorbells (a ring with them waits in bellWrite). Its try
// after announcing itself is tryWriteWaiting, which takes the lock only if
// the record may fit: a try that failed would release the lock, see wwait
// set — by this very writer — and wake the writers, itself included. The
// wait has a timeout only where something may go unnoticed (writerWait).
func blockWrite(w ringWrite) error {
	w.r.stealIfDead()
	writerParks.Add(1)
	return parkOn(w.r.r.wwait, true, tryWriteWaiting, w, w.r.writerWait())
}

// writerWait is how long a writer sleeps on the futex before it looks
// again: writerRecheck while another process holds the lock (it may die
// holding it, and then nobody wakes the writer); shrinkRecheck on memory a
// peer can shrink (the next try then faults, which breaks the end as it
// should); otherwise, waiting for room, until the reader wakes it — a
// blocked Send costs nothing while it waits.
func (r *ringEnd) writerWait() *unix.Timespec {
	switch {
	case r.lockedByOther():
		return &writerRecheckTS
	case r.guard:
		return &shrinkRecheckTS
	}
	return nil
}

// writerRecheck is how often a writer waiting for the lock looks whether
// its holder died.
const writerRecheck = 10 * time.Millisecond

var (
	writerRecheckTS = unix.NsecToTimespec(int64(writerRecheck))
	shrinkRecheckTS = unix.NsecToTimespec(int64(50 * time.Millisecond))
)

func (r *ringEnd) checkSend(n int) error {
	switch {
	case !r.made():
		return r.notMade("send")
	case !r.writer:
		return errors.New("send on the receiving end of a ring")
	case n < 0 || n > r.r.maxRecord:
		return fmt.Errorf("%w: %d bytes, the ring's largest record is %d", ipcchan.ErrMessageTooLarge, n, r.r.maxRecord)
	}
	return nil
}

func (r *ringEnd) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	return r.send(ctx, true, ringWrite{r: r, tag: tag, msg: msg})
}

func (r *ringEnd) TrySendMsg(tag uint32, msg []byte) error {
	return r.send(context.Background(), false, ringWrite{r: r, tag: tag, msg: msg})
}

// SendInPlace waits for room for a record of n bytes, lets fill write it
// in the ring, and publishes the first m bytes fill says it wrote, with
// tag (see transport.InPlaceSender): the zero-copy send under
// ipcchan.Sender.SendRaw. The ring's write lock is held while fill runs:
// other senders wait. fill runs under the fault guard, so that memory a
// peer shrank under it is an error wrapping ErrCorrupt, not a crash. If
// fill fails, the record is abandoned and nothing is published.
func (r *ringEnd) SendInPlace(ctx context.Context, tag uint32, n int, fill func([]byte) (int, error)) error {
	return r.send(ctx, true, ringWrite{r: r, tag: tag, n: n, fill: fill})
}

// TrySendInPlace is SendInPlace without waiting: ErrWouldBlock, fill not
// called, while the ring has no room for n bytes or another writer holds
// its lock (see transport.InPlaceSender). ipcchan.Sender.TrySend encodes
// into the ring through it.
func (r *ringEnd) TrySendInPlace(tag uint32, n int, fill func([]byte) (int, error)) error {
	return r.send(context.Background(), false, ringWrite{r: r, tag: tag, n: n, fill: fill})
}

// send writes w, waiting for room if block is set.
func (r *ringEnd) send(ctx context.Context, block bool, w ringWrite) error {
	n := w.size()
	if err := r.checkSend(n); err != nil {
		return err
	}
	if block {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if !r.enter() {
		return os.ErrClosed
	}
	defer r.leave()
	var err error = unix.EAGAIN
	if !r.guard {
		// Room now, the common case: no wait or fault guard to set up.
		err = tryWriteWaiting(w)
	}
	switch {
	case err != unix.EAGAIN:
	case block && r.bell != nil:
		err = r.bellWrite(ctx, w)
	case block:
		err = ringDo(ctx, r, tryWriteWaiting, blockWrite, w)
	default:
		// A TrySend looks at the lock's holder only when it failed: a
		// holder that died would otherwise make every later TrySend fail.
		if err = ringTry(r, tryWriteWaiting, w); err == ipcchan.ErrWouldBlock {
			err = ringTry(r, stealThenWrite, w)
		}
	}
	if f, ok := err.(*fillError); ok {
		return f.err
	}
	return transportErr("ring", err)
}

// tryPostEOS appends the end-of-stream record, or returns unix.EAGAIN
// while the ring is full or another writer holds it.
func (r *ringEnd) tryPostEOS() error {
	if !r.tryLock() {
		r.stealIfDead()
		return unix.EAGAIN
	}
	defer r.unlockWriters()
	pos, err := r.reserve(0)
	if err != nil {
		return err
	}
	r.publish(pos, 0, recEOS, 0)
	return nil
}
