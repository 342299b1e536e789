package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
)

// The subscribing end of a broadcast: joining (a slot, under the write
// lock), finding records, delivering them in place (lossless) or from a
// checked copy (lossy), and leaving (PROTOCOL.md §13).

// join takes a free slot, starting at head (or, to replay, at the oldest
// record held). It holds the publishers' write lock meanwhile: no
// publisher scans the slots or writes while the new tail is not there
// yet, so a joiner is never lapped before its tail is visible. A lock
// holder that died has the lock taken back. With every slot taken, it
// frees those of dead subscribers and looks again, then fails with an
// error wrapping ErrNoSlot.
func (e *bcastEnd) join(replay bool) error {
	b := e.b
	r := &e.re
	deadline := time.Now().Add(joinLockWait)
	for wait := time.Microsecond; !e.lock(); wait = min(2*wait, time.Millisecond) {
		e.stealIfDead()
		if time.Now().After(deadline) {
			return fmt.Errorf("the broadcast's write lock has been held by process %d for %v (a publisher stuck in its fill function, or a peer that wrote over the lock): try again", atomic.LoadUint32(b.ring.lock), joinLockWait)
		}
		time.Sleep(wait)
	}
	defer r.unlockWriters()
	head := atomic.LoadUint64(b.ring.head)
	if head%8 != 0 {
		return fmt.Errorf("%w: head %d is not 8-byte aligned", ErrCorrupt, head)
	}
	start, seq := head, atomic.LoadUint64(b.nextSeq)
	if replay {
		start, seq = e.replayFrom(head, seq)
		if !b.lossy {
			atomic.AddUint32(b.replays, 1) // publishers drop their cached slowest tail
		}
	}
	owner := uint64(atomic.AddUint32(b.gen, 1))<<32 | uint64(r.pid)
	if e.takeMoved(owner, head) {
		return nil
	}
	for pass := 0; pass < 2; pass++ {
		for i := range b.slots {
			if atomic.LoadUint64(b.owner(i)) != 0 {
				continue
			}
			atomic.StoreUint64(b.tail(i), start)
			atomic.StoreUint64(b.lost(i), 0)
			atomic.StoreUint64(b.moved(i), 0) // a handover's mark left by a slot freed as stale
			if !atomic.CompareAndSwapUint64(b.owner(i), 0, owner) {
				continue
			}
			e.slot, e.owner, e.ownerWord, e.tailWord = i, owner, b.owner(i), b.tail(i)
			e.tail, e.headSeen, e.nextSeq = start, start, seq
			return nil
		}
		if !e.reapAny() {
			break
		}
	}
	return fmt.Errorf("%w: all %d subscriber slots of the broadcast are taken: format it with a larger ipcchan.WithSubscribers, or close a subscriber first", ErrNoSlot, b.slots)
}

// takeMoved takes over, as owner, a slot that this process's parent
// handed to it ([Pass] of a subscriber), at the position the parent's
// subscriber had reached; it reports whether there was one. The write
// lock is held.
func (e *bcastEnd) takeMoved(owner, head uint64) bool {
	b := e.b
	ppid := uint32(os.Getppid())
	for i := range b.slots {
		was := atomic.LoadUint64(b.owner(i))
		if was == 0 || uint32(was) != ppid || atomic.LoadUint64(b.moved(i)) == 0 ||
			!atomic.CompareAndSwapUint64(b.owner(i), was, owner) {
			continue
		}
		atomic.StoreUint64(b.moved(i), 0)
		tail, seq := atomic.LoadUint64(b.tail(i)), atomic.LoadUint64(b.seq(i))
		if !b.validTail(tail, head) {
			tail, seq = head, atomic.LoadUint64(b.nextSeq) // scribbled over
			atomic.StoreUint64(b.tail(i), tail)
		}
		e.slot, e.owner, e.ownerWord, e.tailWord = i, owner, b.owner(i), b.tail(i)
		e.tail, e.headSeen, e.nextSeq = tail, tail, seq
		return true
	}
	return false
}

// moveWait is how long (a time.Duration) a slot handed to a child waits
// for the child to take it over before a publisher or a joiner frees it
// (the child never started, say). Tests shorten it.
var moveWait atomic.Int64

func init() { moveWait.Store(int64(30 * time.Second)) }

// staleMove reports whether slot i was handed to a child more than
// moveWait ago and not taken over.
func (b *bcastMem) staleMove(i int) bool {
	at := atomic.LoadUint64(b.moved(i))
	return at != 0 && monoNow()-at > uint64(moveWait.Load())
}

// monoNow is CLOCK_MONOTONIC in nanoseconds: the same clock in every
// process of the machine.
func monoNow() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// moveSlot hands the subscriber's slot, at its position, to the child
// process it is passed to: Close here then keeps the slot, which the
// child's Subscribe (InheritReceiver) takes over.
func (e *bcastEnd) moveSlot() {
	if e.pub || !e.re.enter() {
		return
	}
	defer e.re.leave()
	e.re.m.access(func() error {
		if atomic.LoadUint64(e.ownerWord) != e.owner {
			return nil
		}
		seq := e.nextSeq
		if e.pending {
			seq = e.curSeq // a lag was reported; the record after it is the child's first
		}
		atomic.StoreUint64(e.tailWord, e.tail)
		atomic.StoreUint64(e.b.seq(e.slot), seq)
		atomic.StoreUint64(e.b.moved(e.slot), monoNow())
		e.re.handedOff.Store(true)
		return nil
	})
}

// joinLockWait bounds how long a subscriber waits for the write lock to
// join: publishers hold it for one value at a time.
const joinLockWait = 5 * time.Second

// replayFrom returns where a replaying subscriber starts: the oldest
// record held and its sequence number; head and seq if there is none, or
// if oldest is not a valid position (scribbled over).
func (e *bcastEnd) replayFrom(head, seq uint64) (uint64, uint64) {
	b := e.b
	o := atomic.LoadUint64(b.oldest)
	for p := o; b.validTail(p, head) && p < head; {
		flags, _, payload, size, err := b.ring.record(p, head-p)
		switch {
		case err != nil:
			return head, seq
		case flags&recPad != 0:
			p += size
			continue
		case len(payload) < bcastSeq || seqAt(payload) > seq:
			return head, seq
		}
		return o, seqAt(payload)
	}
	return head, seq
}

// reapAny frees the slots of subscribers whose process has exited, and
// those handed to a child that did not take them over in time; it
// reports whether it freed any.
func (e *bcastEnd) reapAny() bool {
	b := e.b
	freed := false
	for i := range b.slots {
		owner := atomic.LoadUint64(b.owner(i))
		if pid := uint32(owner); owner != 0 && (b.staleMove(i) || pid != e.re.pid && !sys.ProcessRunning(int(pid))) {
			freed = atomic.CompareAndSwapUint64(b.owner(i), owner, 0) || freed
		}
	}
	return freed
}

// leaveSlot frees the subscriber's slot (if it is still its own) and wakes
// the publishers waiting for room, which it may have held back.
func (e *bcastEnd) leaveSlot() {
	if e.ownerWord == nil || e.re.handedOff.Load() {
		return // handed to a child: it is the child's now
	}
	atomic.CompareAndSwapUint64(e.ownerWord, e.owner, 0)
	if atomic.LoadUint32(e.b.ring.wwait) != 0 {
		e.re.ring(e.b.ring.wwait)
	}
}

func (e *bcastEnd) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	return e.recv(ctx, true, deliver)
}

func (e *bcastEnd) TryRecvMsg(deliver func(uint32, []byte) error) error {
	return e.recv(context.Background(), false, deliver)
}

func (e *bcastEnd) recv(ctx context.Context, block bool, deliver func(uint32, []byte) error) error {
	switch {
	case !e.made():
		return e.notMade("recv")
	case e.pub:
		return errors.New("receive on a publisher of a broadcast")
	}
	if !e.re.enter() {
		return os.ErrClosed
	}
	defer e.re.leave()
	return receive(ctx, &e.core, e, block, deliver)
}

// errRevoked is the error of a subscriber whose slot is no longer its own.
var errRevoked = fmt.Errorf("%w: this subscriber's slot was freed by a publisher (its tail in the shared memory was invalid, or its process looked dead): subscribe again", ErrCorrupt)

// subRecheck is how long a parked subscriber sleeps before it looks
// again: a peer that scribbles over the waiters' word could otherwise
// keep the publisher's wake from it for ever.
var subRecheckTS = unix.NsecToTimespec(int64(50 * time.Millisecond))

// take finds the next record (see msgSource); it stays in place until
// hand or drop passes it.
func (e *bcastEnd) take(ctx context.Context, block bool) (rawMsg, error) {
	if e.pending {
		e.pending = false
		return e.cur, nil
	}
	r := &e.re
	var err error = unix.EAGAIN
	if !r.guard {
		err = e.tryRead() // a record there, the common case
	}
	switch {
	case err != unix.EAGAIN:
	case block:
		err = ringDo(ctx, r, (*bcastEnd).tryRead, blockRead, e)
	default:
		if err = ringTry(r, (*bcastEnd).tryRead, e); err == ipcchan.ErrWouldBlock {
			err = unix.EAGAIN
		}
	}
	if err != nil {
		return rawMsg{}, err
	}
	return e.cur, nil
}

func blockRead(e *bcastEnd) error {
	return parkOn(e.b.ring.rwait, true, (*bcastEnd).tryRead, e, &subRecheckTS)
}

// hand delivers the record (in place, or the lossy copy) under the fault
// guard, and passes it.
func (e *bcastEnd) hand(m rawMsg, deliver func(uint32, []byte) error) error {
	if !e.re.guard {
		err := deliver(m.tag, m.body)
		e.advance(e.curEnd)
		return err
	}
	var err error
	if ferr := e.re.m.access(func() error {
		err = deliver(m.tag, m.body)
		e.advance(e.curEnd)
		return nil
	}); ferr != nil {
		return ferr
	}
	return err
}

// drop passes the record without delivering it.
func (e *bcastEnd) drop(rawMsg) {
	e.re.m.access(func() error { e.advance(e.curEnd); return nil })
}

// advance moves the subscriber's tail to t and, in lossless mode, wakes
// the parked publishers if it crosses the position they wait for every
// tail to reach (need): only a subscriber that held them back wakes them,
// once.
func (e *bcastEnd) advance(t uint64) {
	was := e.tail
	e.tail = t
	atomic.StoreUint64(e.tailWord, t)
	rm := &e.b.ring
	if !e.b.lossy && atomic.LoadUint32(rm.wwait) != 0 {
		if need := atomic.LoadUint64(e.b.need); was < need && t >= need {
			e.re.ring(rm.wwait)
		}
	}
}

// tryRead finds the next record and holds it in e.cur, passing over
// padding, or returns unix.EAGAIN when there is none. Every value read
// from the mapping is checked before use. In lossy mode it first looks
// whether the publishers overwrote its position (oldest past its tail):
// it then moves to oldest and reports how many values it lost with the
// next record it finds (a *ipcchan.LaggedError, then that record).
func (e *bcastEnd) tryRead() error {
	b := e.b
	rm := &b.ring
	if atomic.LoadUint64(e.ownerWord) != e.owner {
		return errRevoked
	}
	for {
		tail := e.tail
		if e.headSeen == tail {
			e.headSeen = atomic.LoadUint64(rm.head)
			if e.headSeen == tail {
				return e.idle(tail)
			}
		}
		if b.lossy {
			if o := atomic.LoadUint64(b.oldest); o > tail {
				e.lagTo(o)
				continue
			}
		}
		used, err := rm.span(e.headSeen, tail)
		if err != nil {
			return e.corrupt(err)
		}
		flags, tag, payload, size, err := rm.record(tail, used)
		if err == nil && flags&recPad == 0 && len(payload) < bcastSeq {
			err = fmt.Errorf("%w: a %d-byte record has no sequence number", ErrCorrupt, len(payload))
		}
		if b.lossy {
			if err == nil && flags&recPad == 0 {
				payload = e.buf[:copy(e.buf, payload)]
			}
			e.fence()
			if o := atomic.LoadUint64(b.oldest); o > tail {
				e.lagTo(o) // overwritten while it looked: the copy is not used
				continue
			}
		}
		if err != nil {
			return e.corrupt(err)
		}
		if flags&recPad != 0 {
			e.advance(tail + size)
			continue
		}
		seq := seqAt(payload)
		e.cur = rawMsg{tag: tag, body: payload[bcastSeq:]}
		e.curEnd, e.curSeq = tail+size, seq
		if flags&recEOS != 0 {
			// Its tag is its rank among the end-of-stream records: a
			// subscriber that joined after some counts those too.
			e.cur = rawMsg{kind: msgMarker}
			e.core.ended = max(e.core.ended, int(min(tag, 1<<20))-1)
		}
		if b.lossy && seq > e.nextSeq {
			// Values skipped without oldest showing it (a subscription
			// handed over while it had lagged): lost all the same.
			e.lagPending = true
		}
		if e.lagPending {
			e.lagPending = false
			missed := uint64(0)
			if seq > e.nextSeq {
				missed = seq - e.nextSeq
			}
			e.nextSeq = seq
			if flags&recEOS == 0 {
				e.nextSeq++
			}
			atomic.AddUint64(b.lost(e.slot), missed)
			e.pending = true
			return &ipcchan.LaggedError{Missed: missed}
		}
		if seq != e.nextSeq {
			want := e.nextSeq
			e.advance(e.curEnd)
			e.nextSeq = seq + 1
			return fmt.Errorf("%w: a record with sequence number %d where %d was next (passed over)", ErrCorrupt, seq, want)
		}
		if flags&recEOS == 0 {
			e.nextSeq++
		}
		return nil
	}
}

// lagTo moves a lossy subscriber that the publishers lapped to o, the
// oldest record held; the count of values lost goes with the next record
// it reads.
func (e *bcastEnd) lagTo(o uint64) {
	e.tail = o
	e.headSeen = atomic.LoadUint64(e.b.ring.head)
	atomic.StoreUint64(e.tailWord, o)
	e.lagPending = true
}

// idle is tryRead finding nothing at tail: unix.EAGAIN, or the end of the
// stream if every publisher has closed and nothing is left after tail
// (their end-of-stream records may be behind a subscriber that joined, or
// was lapped, after them). The closed count is read before head: records
// it counts are before the head read next.
func (e *bcastEnd) idle(tail uint64) error {
	if int(atomic.LoadUint32(e.b.closed)) < e.core.senders || atomic.LoadUint64(e.b.ring.head) != tail {
		return unix.EAGAIN
	}
	if e.lagPending {
		// Lapped, and nothing follows: no record will carry the count, but
		// nothing is published any more either, so the next sequence
		// number is final.
		e.lagPending = false
		next := atomic.LoadUint64(e.b.nextSeq)
		missed := uint64(0)
		if next > e.nextSeq {
			missed = next - e.nextSeq
		}
		e.nextSeq = next
		atomic.AddUint64(e.b.lost(e.slot), missed)
		return &ipcchan.LaggedError{Missed: missed}
	}
	e.core.ended = max(e.core.ended, e.core.senders)
	e.cur = rawMsg{kind: msgSkip}
	return nil
}

// corrupt reports err, a record or position that is not valid, moving
// the subscriber to head so that the next receive goes on from there
// rather than meeting the same bytes again.
func (e *bcastEnd) corrupt(err error) error {
	head := atomic.LoadUint64(e.b.ring.head)
	if head%8 == 0 {
		e.headSeen = head
		e.tail = head
		atomic.StoreUint64(e.tailWord, head)
		e.nextSeq = atomic.LoadUint64(e.b.nextSeq)
	}
	runtime.Gosched()
	return err
}
