package endpoints

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// FormatRing makes m an empty ring channel: a header and a power-of-two
// data area in the rest of the mapping (so a mapping of 256 bytes plus a
// power of two wastes nothing). ipcchan.WithMaxMessageSize bounds the
// records (default and at most half the data area). Format a mapping once,
// before any end opens it; formatting a ring in use corrupts it.
// WithMaxMessageSize is the one option it honours.
func FormatRing(m *Mapping, opts ...ipcchan.Option) error {
	if !m.made() {
		return m.notMade("format ring")
	}
	cfg, err := newConfig("format ring", m.desc, transport.OptMaxMessageSize, opts)
	if err != nil {
		return err
	}
	return formatRingIn(m, cfg)
}

// formatRingIn formats m with cfg's largest message.
func formatRingIn(m *Mapping, cfg *transport.Config) error {
	maxRecord := 0 // half the data area
	if cfg.Given(transport.OptMaxMessageSize) {
		maxRecord = cfg.MaxMessageSize()
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return m.opErr("format ring", os.ErrClosed)
	}
	return m.opErr("format ring", m.access(func() error {
		_, err := formatRing(m.data, maxRecord)
		return err
	}))
}

// RingPair returns a Sender and a Receiver on a new ring of size bytes in
// anonymous shared memory (a memfd): the fastest transport between
// processes. Hand either end to a child with [Pass]; the child picks it up
// with InheritSender or InheritReceiver. Several sender processes may share
// a ring (give the Receiver ipcchan.WithSenders(n) for end of stream).
// Options: those of RingSender and RingReceiver; WithMaxMessageSize also
// bounds the ring's records (see FormatRing).
func RingPair[T any](size int, opts ...ipcchan.Option) (*ipcchan.Sender[T], *ipcchan.Receiver[T], error) {
	cfg, err := newConfig("create", "a ring", optMsgSend|optMsgRecv, opts)
	if err != nil {
		return nil, nil, err
	}
	m, err := NewMemfd("ipcchan-ring", size)
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	if err := formatRingIn(m, cfg); err != nil {
		return nil, nil, err
	}
	tx, err := ringSender[T](m, cfg)
	if err != nil {
		return nil, nil, err
	}
	rx, err := ringReceiver[T](m, cfg)
	if err != nil {
		tx.Close()
		return nil, nil, err
	}
	return tx, rx, nil
}

// RingSender returns a Sender on the ring formatted in m (see
// [FormatRing]). It maps the object again for itself, so m may be closed
// afterwards. Sends copy the message into the ring and make no system call
// unless the reader is parked (one futex wake) or the ring is full (the
// sender parks). Close appends an end-of-stream record. Options: those of a
// Sender and WithLinger.
func RingSender[T any](m *Mapping, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	cfg, err := newConfig("open", "ring in "+m.String(), optMsgSend, opts)
	if err != nil {
		return nil, err
	}
	return ringSender[T](m, cfg)
}

func ringSender[T any](m *Mapping, cfg *transport.Config) (*ipcchan.Sender[T], error) {
	r, err := openRingEnd(m, true, cfg)
	if err != nil {
		return nil, err
	}
	return senderOver[T](r, cfg)
}

// RingReceiver returns the Receiver of the ring formatted in m; a ring has
// one. Receives read records in place and make no system call while
// records are there; on an empty ring the receiver spins briefly, then
// parks on a futex in the mapping (holding an OS thread while parked),
// which the sender wakes. A dead sender is seen through WatchPeer. Options:
// those of a Receiver and WithSenders.
func RingReceiver[T any](m *Mapping, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	cfg, err := newConfig("open", "ring in "+m.String(), optMsgRecv, opts)
	if err != nil {
		return nil, err
	}
	return ringReceiver[T](m, cfg)
}

func ringReceiver[T any](m *Mapping, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	r, err := openRingEnd(m, false, cfg)
	if err != nil {
		return nil, err
	}
	return receiverOver[T](r, cfg)
}

// ringMinSpin is the shortest a ring end spins before it parks.
const ringMinSpin = 10 * time.Microsecond

// ringEnd is one end of a shared-memory ring: the transport under a ring
// Sender or Receiver. Zero-copy access goes through the typed ends:
// Sender.SendRaw writes a record in place (SendInPlace), Receiver.RecvRaw
// reads one in place (RecvMsg delivers the record in the ring).
//
// A ring in memory a peer can shrink (anything but a memfd sealed against
// shrinking, which is what RingPair makes, or a SysV segment; see
// [Mapping]): once the peer truncates it, every call on the end — Close's
// end-of-stream record included — returns an error wrapping [ErrCorrupt]
// instead of the fault killing the process, for good; Close still
// releases the end. The fill and read functions of SendRaw and RecvRaw run
// under the same guard.
type ringEnd struct {
	m      *Mapping // this end's own mapping
	r      *ringMem
	desc   string
	writer bool
	pid    uint32
	wait   *poller.Blocking
	linger time.Duration
	guard  bool // m.guard: run the calls under the fault guard

	// Writer side.
	// tailSeen is the tail last read: room is known to exist up to it.
	// It is used under the write lock, which lives in shared memory where
	// the race detector cannot see it order anything (Close's end marker
	// may follow a blocked Send from another goroutine): hence atomic.
	tailSeen atomic.Uint64
	locked   bool   // this end holds the write lock (Reserve..Commit)
	reserved uint64 // position of the reserved record
	resLen   int
	msg      []byte
	tag      uint32
	tryFn    func() error
	blockFn  func() error
	commitFn func() error // commitRecord, with comTag and comLen
	comTag   uint32
	comLen   int

	// Reader side.
	headSeen uint64 // the head last read: records are known to exist up to it
	senders  int
	ended    int
	max      int
	deliver  func(uint32, []byte) error
	rtryFn   func() error
	rblock   func() error

	calls     callGuard // calls using the mapping; Close waits for them
	handedOff atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

func openRingEnd(m *Mapping, writer bool, cfg *transport.Config) (*ringEnd, error) {
	if !m.made() {
		// A zero Mapping's shmid, 0, may be somebody's SysV segment.
		return nil, m.notMade("open ring")
	}
	own, err := m.remap()
	if err != nil {
		return nil, err
	}
	rm, err := openRingIn(own)
	if err != nil {
		own.Close()
		return nil, opErr("open", "ring in "+m.desc, err)
	}
	return newRingEnd(own, rm, writer, cfg), nil
}

// openRingIn validates the ring header in m, under the fault guard.
func openRingIn(m *Mapping) (rm *ringMem, err error) {
	err = m.access(func() error {
		rm, err = openRing(m.data)
		return err
	})
	return rm, err
}

func newRingEnd(own *Mapping, rm *ringMem, writer bool, cfg *transport.Config) *ringEnd {
	r := &ringEnd{m: own, r: rm, desc: "ring in " + own.desc, writer: writer, pid: uint32(os.Getpid()),
		senders: cfg.Senders(), max: cfg.MaxMessageSize(), linger: cfg.Linger(), guard: own.guard}
	word := rm.rwait
	if writer {
		word = rm.wwait
	}
	r.wait = poller.NewBlocking(0, func() bool { return r.wakeParked(word) == nil })
	// Parking costs tens of microseconds on a virtual machine, against a
	// few for the peer's next record: never spin for less than this.
	r.wait.SetMinSpin(ringMinSpin)
	r.tryFn, r.blockFn, r.commitFn = r.tryWrite, r.blockWrite, r.commitRecord
	r.rtryFn, r.rblock = r.tryRead, r.blockRead
	return r
}

// wakeParked interrupts a call of this end parked on word: it clears the
// word (so that a futex wait about to start returns at once) and wakes
// the word's waiters. It fails if the memory is gone; the poller then
// interrupts the call with a signal, and the futex wait, restarted on
// memory that is gone, returns EFAULT. Once the mapping is closed no call
// is parked on it: there is nothing to do.
func (r *ringEnd) wakeParked(word *uint32) error {
	r.m.mu.RLock()
	defer r.m.mu.RUnlock()
	if r.m.closed {
		return nil
	}
	return r.m.access(func() error {
		atomic.StoreUint32(word, 0)
		_, err := sys.FutexWake(word, 1<<30)
		return err
	})
}

// do runs a call that may wait, r.wait.Do(ctx, try, block), under the
// fault guard if the mapping needs it. (Send and Recv spell it out, to
// save a call.)
func (r *ringEnd) do(ctx context.Context, try, block func() error) error {
	if r.guard {
		return r.guardedDo(ctx, try, block)
	}
	return r.wait.Do(ctx, try, block)
}

// guardedDo is r.wait.Do under the fault guard. A futex wait that found
// the memory gone (EFAULT) breaks the mapping as a fault does. (Memory
// that needs no guard cannot vanish.)
func (r *ringEnd) guardedDo(ctx context.Context, try, block func() error) (err error) {
	if err := r.m.faultErr(); err != nil {
		return err
	}
	defer r.m.catchFault(&err, debug.SetPanicOnFault(true))
	err = r.wait.Do(ctx, try, block)
	if err == unix.EFAULT {
		err = r.m.broke("a futex wait (EFAULT)")
	}
	return err
}

// remap maps the object behind m again, for an end that owns its mapping.
func (m *Mapping) remap() (*Mapping, error) {
	if m.shmid >= 0 {
		return AttachSysVShm(m.shmid)
	}
	f, err := m.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return MappingFromFile(f)
}

func (r *ringEnd) String() string {
	if !r.made() {
		return "zero ringEnd"
	}
	return r.desc
}

// MaxMsgSize is the ring's largest record.
func (r *ringEnd) MaxMsgSize() int {
	if !r.made() {
		return 0
	}
	return r.r.maxRecord
}

// made reports whether a ring end was made (the ringEnd of a Sender or
// Receiver): a ringEnd declared by hand has no memory.
func (r *ringEnd) made() bool { return r != nil && r.r != nil }

func (r *ringEnd) notMade(op string) error {
	return errNotMade(op, "ringEnd", "RingPair, RingSender or RingReceiver (the Transport of their ends)")
}

// --- writer ---

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
func (r *ringEnd) stealIfDead() {
	owner := atomic.LoadUint32(r.r.lock)
	if owner != 0 && owner != r.pid && !sys.ProcessRunning(int(owner)) {
		atomic.CompareAndSwapUint32(r.r.lock, owner, 0)
	}
}

// unlockWriters frees the write lock and wakes the writers parked for it.
func (r *ringEnd) unlockWriters() {
	atomic.StoreUint32(r.r.lock, 0)
	if atomic.LoadUint32(r.r.wwait) != 0 {
		atomic.StoreUint32(r.r.wwait, 0)
		sys.FutexWake(r.r.wwait, 1<<30)
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
		atomic.StoreUint32(rm.rwait, 0)
		sys.FutexWake(rm.rwait, 1)
	}
}

// tryWrite writes r.msg as one record, or returns unix.EAGAIN when full
// (or locked by another writer).
func (r *ringEnd) tryWrite() error {
	if !r.tryLock() {
		return unix.EAGAIN
	}
	defer r.unlockWriters()
	pos, err := r.reserve(len(r.msg))
	if err != nil {
		return err
	}
	i := pos & r.r.mask
	copy(r.r.data[i+recHeader:], r.msg)
	r.publish(pos, len(r.msg), 0, r.tag)
	return nil
}

// blockWrite parks until the reader frees room or the lock is released
// (or an interrupt). It wakes every 10 ms to see whether a lock holder
// died.
func (r *ringEnd) blockWrite() error {
	r.stealIfDead()
	return parkOn(r.r.wwait, r.tryFn, &writerRecheck)
}

var writerRecheck = unix.NsecToTimespec(int64(10 * time.Millisecond))

// parkOn announces a waiter on word, tries once more (the other side may
// have acted before it could see the announcement), and sleeps on the
// futex for at most timeout (nil: until woken). It returns try's result, or
// unix.EINTR to be called again.
func parkOn(word *uint32, try func() error, timeout *unix.Timespec) error {
	atomic.StoreUint32(word, 1)
	if err := try(); err != unix.EAGAIN {
		atomic.StoreUint32(word, 0)
		return err
	}
	if sys.FutexWait(word, 1, timeout) == unix.EFAULT {
		return unix.EFAULT // the memory is gone
	}
	return unix.EINTR
}

// errReserved refuses a send from inside SendInPlace's fill function on
// the same end: the record would wait for the write lock this end holds.
var errReserved = errors.New("a send from inside SendRaw's fill function on the same ring end would wait for ever for its own write lock")

func (r *ringEnd) checkSend(msg []byte) error {
	if !r.writer {
		return errors.New("send on the receiving end of a ring")
	}
	if r.locked {
		return errReserved
	}
	if len(msg) > r.r.maxRecord {
		return fmt.Errorf("%w: %d bytes, the ring's largest record is %d", ipcchan.ErrMessageTooLarge, len(msg), r.r.maxRecord)
	}
	return nil
}

func (r *ringEnd) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	if !r.made() {
		return r.notMade("send")
	}
	if err := r.checkSend(msg); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !r.enter() {
		return os.ErrClosed
	}
	defer r.leave()
	r.msg, r.tag = msg, tag
	var err error
	if r.guard {
		err = r.guardedDo(ctx, r.tryFn, r.blockFn)
	} else {
		err = r.wait.Do(ctx, r.tryFn, r.blockFn)
	}
	r.msg = nil
	return ringErr(err)
}

func (r *ringEnd) TrySendMsg(tag uint32, msg []byte) error {
	if !r.made() {
		return r.notMade("send")
	}
	if err := r.checkSend(msg); err != nil {
		return err
	}
	if !r.enter() {
		return os.ErrClosed
	}
	defer r.leave()
	r.msg, r.tag = msg, tag
	var err error
	if r.guard {
		err = r.m.guarded(r.tryFn)
	} else {
		err = r.tryWrite()
	}
	r.msg = nil
	return r.tryResult(err)
}

// tryResult maps a non-blocking attempt's unix.EAGAIN to ErrWouldBlock, or
// to the Fail error of a ring whose peer is gone.
func (r *ringEnd) tryResult(err error) error {
	if err != unix.EAGAIN {
		return ringErr(err)
	}
	if ferr := r.wait.Failure(); ferr != nil {
		return ferr
	}
	return ipcchan.ErrWouldBlock
}

// enter marks a call using the mapping; it returns false once Close has
// begun. leave ends it; Close waits for every call to leave before it
// posts the end of stream and unmaps.
func (r *ringEnd) enter() bool { return r.calls.enter() }

func (r *ringEnd) leave() { r.calls.leave() }

func ringErr(err error) error { return transportErr("ring", err) }

// SendInPlace waits for room for a record of n bytes, lets fill write it
// in the ring, and publishes the first m bytes fill says it wrote, with
// tag (see transport.InPlaceSender): the zero-copy send under
// ipcchan.Sender.SendRaw. The ring's write lock is held while fill runs:
// other senders wait. fill runs under the fault guard, so that memory a
// peer shrank under it is an error wrapping ErrCorrupt, not a crash. If
// fill fails, the record is abandoned and nothing is published.
func (r *ringEnd) SendInPlace(ctx context.Context, tag uint32, n int, fill func([]byte) (int, error)) error {
	switch {
	case !r.made():
		return r.notMade("send")
	case !r.writer:
		return errors.New("send on the receiving end of a ring")
	case n < 0 || n > r.r.maxRecord:
		return fmt.Errorf("%w: %d bytes, the ring's largest record is %d", ipcchan.ErrMessageTooLarge, n, r.r.maxRecord)
	case r.locked:
		return errReserved
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !r.enter() {
		return os.ErrClosed
	}
	defer r.leave()
	try := func() error {
		if !r.tryLock() {
			return unix.EAGAIN
		}
		pos, err := r.reserve(n)
		if err != nil {
			r.unlockWriters()
			return err
		}
		r.locked, r.reserved, r.resLen = true, pos, n
		return nil
	}
	block := func() error {
		r.stealIfDead()
		return parkOn(r.r.wwait, try, &writerRecheck)
	}
	if err := r.do(ctx, try, block); err != nil {
		return ringErr(err)
	}
	i := r.reserved & r.r.mask
	room := r.r.data[i+recHeader : i+recHeader+uint64(n) : i+recHeader+uint64(n)]
	var fillErr error
	err := r.m.access(func() error {
		m, err := fill(room)
		if err == nil {
			err = transport.CheckFilled(m, n)
		}
		if err != nil {
			fillErr = err
			r.locked = false
			r.unlockWriters()
			return nil
		}
		r.comTag, r.comLen = tag, m
		return r.commitRecord()
	})
	if fillErr != nil {
		return fillErr
	}
	if err != nil {
		r.locked = false // the memory, and the lock in it, is gone
	}
	return ringErr(err)
}

// commitRecord publishes the reserved record with comTag and comLen
// bytes, and frees the write lock.
func (r *ringEnd) commitRecord() error {
	r.locked = false
	r.publish(r.reserved, r.comLen, 0, r.comTag)
	r.unlockWriters()
	return nil
}

// --- reader ---

// tryRead delivers the next record, or returns unix.EAGAIN when the ring
// is empty.
func (r *ringEnd) tryRead() error {
	rm := r.r
	for {
		if r.ended >= r.senders {
			return io.EOF
		}
		tail := atomic.LoadUint64(rm.tail)
		// The head read last time usually shows more records; only when
		// it does not is the writers' cache line read again.
		used := r.headSeen - tail
		if used == 0 || used > rm.capacity {
			r.headSeen = atomic.LoadUint64(rm.head)
			var err error
			if used, err = rm.span(r.headSeen, tail); err != nil {
				return err
			}
			if used == 0 {
				return unix.EAGAIN
			}
		}
		flags, tag, payload, size, err := rm.record(tail, used)
		if err != nil {
			return err
		}
		switch {
		case flags&recPad != 0:
			r.advance(tail + size)
			continue
		case flags&recEOS != 0:
			r.ended++
			r.advance(tail + size)
			continue
		case len(payload) > r.max:
			r.advance(tail + size)
			return fmt.Errorf("%w: a %d-byte record, limit %d (discarded)", ipcchan.ErrFrameTooLarge, len(payload), r.max)
		}
		err = r.deliver(tag, payload)
		r.advance(tail + size)
		return err
	}
}

// advance frees the ring up to tail and wakes parked writers once half of
// it is free: a writer that outruns the reader then parks once per half
// ring rather than once per record. (Records are at most half the ring,
// so the room a writer waits for is there by then.)
func (r *ringEnd) advance(tail uint64) {
	atomic.StoreUint64(r.r.tail, tail)
	if atomic.LoadUint32(r.r.wwait) != 0 && r.headSeen-tail <= r.r.capacity/2 {
		atomic.StoreUint32(r.r.wwait, 0)
		sys.FutexWake(r.r.wwait, 1<<30)
	}
}

func (r *ringEnd) blockRead() error { return parkOn(r.r.rwait, r.rtryFn, nil) }

// checkRecv refuses a receive on the sending end.
func (r *ringEnd) checkRecv() error {
	if r.writer {
		return errors.New("receive on the sending end of a ring")
	}
	return nil
}

func (r *ringEnd) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	if !r.made() {
		return r.notMade("recv")
	}
	if err := r.checkRecv(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !r.enter() {
		return os.ErrClosed
	}
	defer r.leave()
	r.deliver = deliver
	var err error
	if r.guard {
		err = r.guardedDo(ctx, r.rtryFn, r.rblock)
	} else {
		err = r.wait.Do(ctx, r.rtryFn, r.rblock)
	}
	r.deliver = nil
	return ringErr(err)
}

func (r *ringEnd) TryRecvMsg(deliver func(uint32, []byte) error) error {
	if !r.made() {
		return r.notMade("recv")
	}
	if err := r.checkRecv(); err != nil {
		return err
	}
	if !r.enter() {
		return os.ErrClosed
	}
	defer r.leave()
	r.deliver = deliver
	var err error
	if r.guard {
		err = r.m.guarded(r.rtryFn)
	} else {
		err = r.tryRead()
	}
	r.deliver = nil
	return r.tryResult(err)
}

// --- both ---

// Fail makes waits return err once the records already in the ring are
// taken.
func (r *ringEnd) Fail(err error) {
	if r.made() {
		r.wait.Fail(err)
	}
}

func (r *ringEnd) setHandedOff() { r.handedOff.Store(true) }

// File returns a duplicate of the descriptor of the ring's memory, for
// another process (not for SysV segments: pass the segment identifier).
func (r *ringEnd) File() (*os.File, error) {
	if !r.made() {
		return nil, r.notMade("file")
	}
	return r.m.File()
}

// Close wakes this end's blocked calls, which return an error wrapping
// os.ErrClosed having written nothing, waits until they have returned, and
// unmaps its memory; a sender's end first appends an end-of-stream record
// after everything its Sends committed, waiting up to the linger time for
// room. On memory a peer shrank (see [ringEnd]) it posts nothing, and still
// releases the end.
func (r *ringEnd) Close() error {
	if !r.made() {
		return r.notMade("close")
	}
	r.closeOnce.Do(func() {
		r.calls.close()
		r.wait.Close()
		r.calls.wait() // from here on, nothing else in this process uses the end
		if r.locked {  // a reservation never committed is abandoned
			r.locked = false
			r.m.access(func() error { r.unlockWriters(); return nil })
		}
		if r.writer && !r.handedOff.Load() && r.wait.Failure() == nil && r.m.faultErr() == nil {
			r.closeErr = postEOS(r.linger, func() error { return r.m.access(r.tryPostEOS) })
		}
		r.closeErr = errors.Join(r.closeErr, r.m.Close())
	})
	return r.closeErr
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

// isRingFile reports whether fd is a shared memory object or file that
// holds a ring (its first bytes are the ring magic).
func isRingFile(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size < ringHeader+64 {
		return false
	}
	var magic [8]byte
	n, err := unix.Pread(fd, magic[:], 0)
	return err == nil && n == len(magic) && string(magic[:]) == ringMagic
}

// ringEndOn makes a ring end on fd, which it takes over.
func ringEndOn(fd int, desc string, writer bool, cfg *transport.Config) (*ringEnd, error) {
	own, err := mapWhole(fd, desc, nil)
	if err != nil {
		return nil, err
	}
	rm, err := openRingIn(own)
	if err != nil {
		own.Close()
		return nil, opErr("open", desc, err)
	}
	return newRingEnd(own, rm, writer, cfg), nil
}

func ringSenderOn[T any](fd int, desc string, cfg *transport.Config) (*ipcchan.Sender[T], error) {
	r, err := ringEndOn(fd, desc, true, cfg)
	if err != nil {
		return nil, err
	}
	return senderOver[T](r, cfg)
}

func ringReceiverOn[T any](fd int, desc string, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	r, err := ringEndOn(fd, desc, false, cfg)
	if err != nil {
		return nil, err
	}
	return receiverOver[T](r, cfg)
}
