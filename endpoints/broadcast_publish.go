package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// The publishing end of a broadcast: room (the slowest subscriber's tail,
// cached, in lossless mode), the oldest position held, and publishing a
// record (PROTOCOL.md §13). The write lock, the pad and the record's word
// are the ring's.

// bcastWrite is one record to publish: the argument of a send's tries, as
// ringWrite is the ring's.
type bcastWrite struct {
	e    *bcastEnd
	tag  uint32
	msg  []byte
	n    int
	fill func([]byte) (int, error)
}

func (w bcastWrite) size() int {
	if w.fill != nil {
		return w.n
	}
	return len(w.msg)
}

// reserve finds room for a record of n payload bytes (the value, after
// its sequence number), padding to the end of the data area if it would
// straddle it, and returns its position; the write lock is held. Before
// anything the record overwrites is touched, the oldest position moves
// past it. In lossless mode it returns unix.EAGAIN when a subscriber has
// not read what the record would overwrite.
func (e *bcastEnd) reserve(n int) (uint64, error) {
	rm := &e.b.ring
	head := atomic.LoadUint64(rm.head)
	if head%8 != 0 {
		return 0, fmt.Errorf("%w: head %d is not 8-byte aligned", ErrCorrupt, head)
	}
	size := recordSize(bcastSeq + n)
	i := head & rm.mask
	pad := uint64(0)
	if i+size > rm.capacity {
		pad = rm.capacity - i
	}
	if end := head + pad + size; end > rm.capacity {
		limit := end - rm.capacity // what the record overwrites ends here
		if !e.b.lossy {
			if err := e.roomUpTo(head, limit); err != nil {
				return 0, err
			}
		}
		e.advanceOldest(head, limit)
	}
	if pad > 0 {
		atomic.StoreUint32(rm.word(i), recPad)
		head += pad
		atomic.StoreUint64(rm.head, head) // subscribers may skip the pad now
	}
	return head, nil
}

// roomUpTo returns nil if every subscriber has read everything before
// limit, else unix.EAGAIN. The slowest tail found last time usually says
// so; only when it does not (or a replaying subscriber joined since, which
// may start behind it) are the slots scanned again: the cost of a value
// does not grow with the number of subscribers.
func (e *bcastEnd) roomUpTo(head, limit uint64) error {
	if r := atomic.LoadUint32(e.b.replays); r != e.replaysSeen.Load() {
		e.replaysSeen.Store(r)
		e.floorSeen.Store(0)
	}
	if f := e.floorSeen.Load(); f >= limit && f <= head {
		return nil
	}
	f := e.scan(head)
	e.floorSeen.Store(f)
	if f < limit {
		// A subscriber whose tail crosses need wakes a publisher parked
		// for room: half the data area on (records are at most half),
		// so that a publisher outrunning its subscribers parks once per
		// half data area, and the subscribers that are not holding it
		// back do not wake it for nothing.
		atomic.StoreUint64(e.b.need, min(limit+e.b.ring.capacity/2, head))
		return unix.EAGAIN
	}
	return nil
}

// scan returns the slowest tail of the subscribers (head if there are
// none). A slot whose tail is not a position a subscriber can have — past
// head, more than the data area behind, unaligned: scribbled over — is
// freed, and its subscriber learns it at its next receive (ErrCorrupt).
func (e *bcastEnd) scan(head uint64) uint64 {
	b := e.b
	low := head
	for i := range b.slots {
		owner := atomic.LoadUint64(b.owner(i))
		if owner == 0 {
			continue
		}
		t := atomic.LoadUint64(b.tail(i))
		if !b.validTail(t, head) {
			if atomic.CompareAndSwapUint64(b.owner(i), owner, 0) {
				e.revoked.Add(1)
			}
			continue
		}
		low = min(low, t)
	}
	return low
}

// reapDead frees the slots of subscribers whose process has exited (a
// zombie included), or that were handed to a child that did not take them
// over within moveWait, and that hold the publisher back: those whose tail is
// before what the waiting record needs. It runs while a publisher waits,
// at least every writerRecheck; a dead subscriber needs no help of its
// own. It reports whether it freed any.
func (e *bcastEnd) reapDead() bool {
	b := e.b
	head := atomic.LoadUint64(b.ring.head)
	freed := false
	for i := range b.slots {
		owner := atomic.LoadUint64(b.owner(i))
		pid := uint32(owner)
		if owner == 0 || atomic.LoadUint64(b.tail(i)) == head {
			continue // holds nothing back
		}
		dead := b.staleMove(i) || pid != e.re.pid && !sys.ProcessRunning(int(pid))
		if dead && atomic.CompareAndSwapUint64(b.owner(i), owner, 0) {
			freed = true
		}
	}
	return freed
}

// advanceOldest moves the oldest position held past limit, record by
// record (each record is passed over once: the cost per value stays
// constant), before the record that overwrites them is written. The swap
// is a full barrier: a lossy subscriber that sees the old value after its
// copy knows its copy was whole. An oldest that is not a valid position,
// or a walk that meets anything but a valid record (scribbled over), gives
// up what it cannot walk: oldest becomes head.
func (e *bcastEnd) advanceOldest(head, limit uint64) {
	rm := &e.b.ring
	o := atomic.LoadUint64(e.b.oldest)
	if !e.b.validTail(o, head) {
		o = head // scribbled over: what is before head cannot be walked
	}
	for o < limit {
		_, _, _, size, err := rm.record(o, head-o)
		if err != nil {
			o = head
			break
		}
		o += size
	}
	atomic.SwapUint64(e.b.oldest, o)
}

// publish makes the record at pos, of n value bytes, visible and wakes the
// parked subscribers. An end-of-stream record (flags recEOS) carries the
// sequence number of the next value and, in its tag, its rank among the
// end-of-stream records.
func (e *bcastEnd) publish(pos uint64, n int, flags, tag uint32) {
	b := e.b
	rm := &b.ring
	i := pos & rm.mask
	seq := atomic.LoadUint64(b.nextSeq)
	*(*uint64)(unsafe.Pointer(&rm.data[i+recHeader])) = seq
	*(*uint32)(unsafe.Pointer(&rm.data[i+4])) = tag
	atomic.StoreUint32(rm.word(i), flags|uint32(bcastSeq+n))
	atomic.StoreUint64(rm.head, pos+recordSize(bcastSeq+n))
	if flags&recEOS != 0 {
		atomic.AddUint32(b.closed, 1)
	} else {
		atomic.StoreUint64(b.nextSeq, seq+1)
	}
	if atomic.LoadUint32(rm.rwait) != 0 {
		e.re.ring(rm.rwait) // wakes every parked subscriber
	}
}

// lock takes the write lock (the ring's tryLock) and, if a dead holder's
// lock was taken back since the last holder, first recounts nextSeq.
func (e *bcastEnd) lock() bool {
	if !e.re.tryLock() {
		return false
	}
	if atomic.LoadUint32(e.b.stolen) != 0 {
		e.recount()
		atomic.StoreUint32(e.b.stolen, 0)
	}
	return true
}

// stealIfDead takes the write lock back from a holder whose process has
// exited (the ring's stealIfDead), first marking it stolen: the dead
// holder may have committed a value (head) without counting it (nextSeq),
// and the next holder must count again.
func (e *bcastEnd) stealIfDead() bool {
	owner := atomic.LoadUint32(e.b.ring.lock)
	if owner == 0 || owner == e.re.pid || sys.ProcessRunning(int(owner)) {
		return false
	}
	atomic.StoreUint32(e.b.stolen, 1)
	return atomic.CompareAndSwapUint32(e.b.ring.lock, owner, 0)
}

// recount sets nextSeq after the last value held, and closed to the rank
// of the last end-of-stream record held, walking the records from oldest
// to head (rare: after a lock was taken back from a dead holder, which
// may have died between its head store and these). It leaves them alone
// if the walk meets anything invalid, or they are already past it.
func (e *bcastEnd) recount() {
	b := e.b
	head := atomic.LoadUint64(b.ring.head)
	p := atomic.LoadUint64(b.oldest)
	if !b.validTail(p, head) {
		return
	}
	var next uint64
	var closed uint32
	for p < head {
		flags, tag, payload, size, err := b.ring.record(p, head-p)
		if err != nil || flags&recPad == 0 && len(payload) < bcastSeq {
			return
		}
		switch {
		case flags&recPad != 0:
		case flags&recEOS != 0:
			closed = max(closed, tag)
		default:
			next = seqAt(payload) + 1
		}
		p += size
	}
	if next > atomic.LoadUint64(b.nextSeq) {
		atomic.StoreUint64(b.nextSeq, next)
	}
	if closed > atomic.LoadUint32(b.closed) {
		atomic.StoreUint32(b.closed, closed)
	}
}

// unlockQuiet frees the write lock after a try that found no room,
// waking nobody: the other publishers wait for the same subscribers (and
// look again at least every writerRecheck), and a wake would wake this
// very publisher, parked on the same word, for nothing.
func (e *bcastEnd) unlockQuiet() { atomic.StoreUint32(e.b.ring.lock, 0) }

// tryPublish writes w's record, or returns unix.EAGAIN when there is no
// room (lossless) or another publisher holds the lock. A fill runs with
// the write lock held, in the record's room; if it fails, the record is
// abandoned and its error returned as a *fillError.
func tryPublish(w bcastWrite) error {
	e := w.e
	if !e.lock() {
		return unix.EAGAIN
	}
	n := w.size()
	pos, err := e.reserve(n)
	if err != nil {
		e.unlockQuiet()
		return err
	}
	defer e.re.unlockWriters()
	rm := &e.b.ring
	i := pos&rm.mask + recHeader + bcastSeq
	room := rm.data[i : i+uint64(n) : i+uint64(n)]
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
	e.publish(pos, n, 0, w.tag)
	return nil
}

// blockPublish parks on the publishers' futex word until a subscriber
// frees room or the lock is released, at most writerRecheck: it then
// takes the lock back from a dead holder and frees the slots of dead
// subscribers that hold it back.
func blockPublish(w bcastWrite) error {
	w.e.stealIfDead()
	w.e.reapDead()
	writerParks.Add(1)
	return parkOn(w.e.b.ring.wwait, true, tryPublish, w, &writerRecheckTS)
}

// reapThenPublish is a TrySend's second try, after one that failed: it
// frees a dead holder's lock and dead subscribers' slots and tries again;
// unix.EAGAIN, trying nothing, if there was nothing to free.
func reapThenPublish(w bcastWrite) error {
	stole := w.e.stealIfDead()
	if !w.e.reapDead() && !stole {
		return unix.EAGAIN
	}
	return tryPublish(w)
}

func (e *bcastEnd) checkSend(n int) error {
	switch {
	case !e.made():
		return e.notMade("send")
	case !e.pub:
		return errors.New("send on a subscriber of a broadcast")
	case n < 0 || n > e.b.maxPayload:
		return fmt.Errorf("%w: %d bytes, the broadcast's largest value is %d (format it with a larger ipcchan.WithMaxMessageSize, or a larger mapping)", ipcchan.ErrMessageTooLarge, n, e.b.maxPayload)
	}
	return nil
}

func (e *bcastEnd) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	return e.send(ctx, true, bcastWrite{e: e, tag: tag, msg: msg})
}

func (e *bcastEnd) TrySendMsg(tag uint32, msg []byte) error {
	return e.send(context.Background(), false, bcastWrite{e: e, tag: tag, msg: msg})
}

// SendInPlace waits for room for a value of n bytes, lets fill write it
// in the shared memory, and publishes the first m bytes fill says it
// wrote (see transport.InPlaceSender): the zero-copy send under
// ipcchan.Sender.SendRaw, and under Send for codecs that know the encoded
// length. The write lock is held while fill runs. If fill fails, nothing
// is published.
func (e *bcastEnd) SendInPlace(ctx context.Context, tag uint32, n int, fill func([]byte) (int, error)) error {
	return e.send(ctx, true, bcastWrite{e: e, tag: tag, n: n, fill: fill})
}

// TrySendInPlace is SendInPlace without waiting: ErrWouldBlock, fill not
// called, while there is no room or another publisher holds the lock.
func (e *bcastEnd) TrySendInPlace(tag uint32, n int, fill func([]byte) (int, error)) error {
	return e.send(context.Background(), false, bcastWrite{e: e, tag: tag, n: n, fill: fill})
}

// send publishes w, waiting for room if block is set.
func (e *bcastEnd) send(ctx context.Context, block bool, w bcastWrite) error {
	if err := e.checkSend(w.size()); err != nil {
		return err
	}
	if block {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	r := &e.re
	if err := r.wait.Failure(); err != nil {
		return err // the watched peer is gone (Fail)
	}
	if !r.enter() {
		return os.ErrClosed
	}
	defer r.leave()
	var err error = unix.EAGAIN
	if !r.guard {
		err = tryPublish(w) // room now, the common case: no wait or guard to set up
	}
	switch {
	case err != unix.EAGAIN:
	case block:
		err = ringDo(ctx, r, tryPublish, blockPublish, w)
	default:
		if err = ringTry(r, tryPublish, w); err == ipcchan.ErrWouldBlock {
			err = ringTry(r, reapThenPublish, w)
		}
	}
	if f, ok := err.(*fillError); ok {
		return f.err
	}
	return transportErr("broadcast", err)
}

// tryPostEOS appends this publisher's end-of-stream record, or returns
// unix.EAGAIN while there is no room or another publisher holds the lock.
func (e *bcastEnd) tryPostEOS() error {
	if !e.lock() {
		e.stealIfDead()
		return unix.EAGAIN
	}
	pos, err := e.reserve(0)
	if err != nil {
		e.unlockQuiet()
		e.reapDead()
		return err
	}
	defer e.re.unlockWriters()
	e.publish(pos, 0, recEOS, atomic.LoadUint32(e.b.closed)+1)
	return nil
}
