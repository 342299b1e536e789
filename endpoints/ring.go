package endpoints

import (
	"context"
	"errors"
	"os"
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
	if !m.uses.enter() {
		return m.opErr("format ring", os.ErrClosed)
	}
	defer m.uses.leave()
	return m.opErr("format ring", m.access(func() error {
		_, err := formatRing(m.data, maxRecord)
		return err
	}))
}

// RingPair returns a Sender and a Receiver on a new ring of size bytes in
// anonymous shared memory (a memfd): the fastest transport between
// processes. Hand either end to a child with [Pass]; the child picks it up
// with InheritSender or InheritReceiver. The ring comes with eventfd
// doorbells, which Pass hands over too: a parked receiver, and a Send
// waiting for room or for another sender process's write lock, wait on
// their doorbells holding no OS thread, and ipcchan.Select waits on the
// ends (receive and send cases) without polling. An end opened on the ring's bare file in another
// process, which has no doorbells, is refused. Several sender processes may share
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
	release, err := addBells(m)
	if err != nil {
		return nil, nil, err
	}
	defer release()
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
// afterwards. Sends encode the value straight into the ring when the codec
// knows its encoded length ([]byte, string, fixed sizes: see
// ipcchan.Sender.Send), and copy the encoding in otherwise; they make no system call
// unless the reader is parked (one futex wake) or the ring is full (the
// sender parks: on a futex in the mapping, holding an OS thread while
// parked, until the reader has freed half of the ring; on a ring that
// RingPair made, on its writers' eventfd doorbell through the runtime
// poller, holding none — see PROTOCOL.md §8). Close appends an
// end-of-stream record. Options: those of a
// Sender, WithLinger and WithWaitForCreate (wait, polling, for a ring its
// creator has not formatted yet).
func RingSender[T any](m *Mapping, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	cfg, err := newConfig("open", "ring in "+m.String(), optMsgSend|optWait, opts)
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
	return senderOver[T](r.transport(), cfg)
}

// RingReceiver returns the Receiver of the ring formatted in m; a ring has
// one. Receives read records in place and make no system call while
// records are there; on an empty ring the receiver spins briefly, then
// parks on a futex in the mapping (holding an OS thread while parked),
// which the sender wakes. (A ring that RingPair made parks on an eventfd
// doorbell instead, holding no thread; see PROTOCOL.md §8.) A dead sender is seen through WatchPeer. Options:
// those of a Receiver, WithSenders and WithWaitForCreate (wait, polling,
// for a ring its creator has not formatted yet).
func RingReceiver[T any](m *Mapping, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	cfg, err := newConfig("open", "ring in "+m.String(), optMsgRecv|optWait, opts)
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
	return receiverOver[T](r.transport(), cfg)
}

// ringMinSpin is the shortest a ring end spins before it parks.
const ringMinSpin = 10 * time.Microsecond

// ringEnd is one end of a shared-memory ring: the transport under a ring
// Sender or Receiver. Zero-copy access goes through the typed ends:
// Sender.SendRaw writes a record in place (SendInPlace), and so do Send,
// SendTag and TrySend (SendInPlace, TrySendInPlace: the codec encodes into
// the record) when the codec knows the encoded length; Receiver.RecvRaw
// reads one in place (RecvMsg delivers the record in the ring, where Recv
// decodes it).
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

	// Writer side: the tail last read, up to which room is known to exist.
	// It is used under the write lock, which lives in shared memory where
	// the race detector cannot see it order anything (Close's end marker
	// may follow a blocked Send from another goroutine): hence atomic.
	tailSeen atomic.Uint64

	// Reader side: the head last read, up to which records are known to
	// exist, and the record tryRead found, held until hand or drop frees
	// it (up to curEnd).
	core     recvCore
	headSeen uint64
	cur      rawMsg
	curEnd   uint64

	// Doorbells (ring_bell.go), on a ring that has them: bell is this
	// end's own, to wait on; ringFD the other side's, to ring, and ownFD
	// this end's own again (the process's shared descriptor, open until
	// releaseBells), for a writer to ring the other writers.
	bell        *poller.FD
	ringFD      int
	ownFD       int
	bellKey     bellKey
	parkReadFn  func(int) error
	parkWriteFn func(int) error
	wantRoom    atomic.Uint32 // a sender's last record that found no room

	// A Send parked on the writers' bell (bellWrite): its record, and
	// whether its wait has a deadline (a lock holder to check on). Sends
	// on one end do not overlap (ipcchan.Sender serializes them).
	parked  ringWrite
	recheck bool

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
	if err := awaitFormat(own, cfg); err != nil {
		own.Close()
		return nil, err
	}
	rm, err := openRingIn(own)
	if err != nil {
		own.Close()
		return nil, opErr("open", "ring in "+m.desc, err)
	}
	return newRingEnd(own, rm, writer, cfg)
}

// openRingIn validates the ring header in m, under the fault guard.
func openRingIn(m *Mapping) (rm *ringMem, err error) {
	err = m.access(func() error {
		rm, err = openRing(m.data)
		return err
	})
	return rm, err
}

// newRingEnd makes an end on the ring rm in own, which it takes over (and
// closes on error).
func newRingEnd(own *Mapping, rm *ringMem, writer bool, cfg *transport.Config) (*ringEnd, error) {
	r := &ringEnd{m: own, r: rm, desc: "ring in " + own.desc, writer: writer, pid: uint32(os.Getpid()),
		linger: cfg.Linger(), guard: own.guard, core: newRecvCore("ring", cfg.MaxMessageSize(), cfg.Senders())}
	if err := r.attachBells(); err != nil {
		own.Close()
		return nil, opErr("open", r.desc, err)
	}
	word := rm.rwait
	if writer {
		word = rm.wwait
	}
	r.wait = poller.NewBlocking(0, func() bool { return r.wakeParked(word) == nil })
	// Parking costs tens of microseconds on a virtual machine, against a
	// few for the peer's next record: never spin for less than this.
	r.wait.SetMinSpin(ringMinSpin)
	r.wait.SpinOnMemory()
	return r, nil
}

// transport returns r as the transport of a Sender or Receiver: with its
// doorbell, which a Select can wait on, if the ring has them.
func (r *ringEnd) transport() interface {
	transport.MsgSender
	transport.MsgReceiver
} {
	if r.bell != nil {
		return bellRing{r}
	}
	return r
}

// wakeParked interrupts a call of this end parked on word: it clears the
// word (so that a futex wait about to start returns at once) and wakes
// the word's waiters. It fails if the memory is gone; the poller then
// interrupts the call with a signal, and the futex wait, restarted on
// memory that is gone, returns EFAULT. Once the mapping is closed no call
// is parked on it: there is nothing to do.
func (r *ringEnd) wakeParked(word *uint32) error {
	if !r.m.uses.enter() {
		return nil
	}
	defer r.m.uses.leave()
	return r.m.access(func() error {
		atomic.StoreUint32(word, 0)
		_, err := sys.FutexWake(word, 1<<30)
		return err
	})
}

// ringDo runs a call of r that may wait, poller.Do(ctx, r.wait, try,
// block, arg), under the fault guard if the mapping needs it. A futex wait
// that found the memory gone (EFAULT) breaks the mapping as a fault does.
// (Memory that needs no guard cannot vanish.)
func ringDo[A any](ctx context.Context, r *ringEnd, try, block func(A) error, arg A) (err error) {
	if !r.guard {
		return poller.Do(ctx, r.wait, try, block, arg)
	}
	if err := r.m.faultErr(); err != nil {
		return err
	}
	defer r.m.catchFault(&err, debug.SetPanicOnFault(true))
	err = poller.Do(ctx, r.wait, try, block, arg)
	if err == unix.EFAULT {
		err = r.m.broke("a futex wait (EFAULT)")
	}
	return err
}

// ringTry runs a call's try once, under the fault guard if the mapping
// needs it, and maps unix.EAGAIN to ipcchan.ErrWouldBlock, or to the Fail
// error of a ring whose peer is gone.
func ringTry[A any](r *ringEnd, try func(A) error, arg A) (err error) {
	if r.guard {
		if err := r.m.faultErr(); err != nil {
			return err
		}
		defer r.m.catchFault(&err, debug.SetPanicOnFault(true))
	}
	if err = try(arg); err != unix.EAGAIN {
		return err
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

// parkOn announces a waiter on word, tries once more (the other side may
// have acted before it could see the announcement), and sleeps on the
// futex for at most timeout (nil: until woken). It returns try's result, or
// unix.EINTR to be called again. A try that succeeded takes the
// announcement back only if the word is this end's alone (rwait: one
// reader). wwait is shared by every writer process: another writer may
// have announced itself on it since, and clearing it would leave that
// writer asleep with nobody to wake it (the reader and the lock's holder
// wake writers only while the word is set); the writer's own unlock has
// already woken the writers and cleared it if it was set.
func parkOn[A any](word *uint32, shared bool, try func(A) error, arg A, timeout *unix.Timespec) error {
	atomic.StoreUint32(word, 1)
	if err := try(arg); err != unix.EAGAIN {
		if !shared {
			atomic.StoreUint32(word, 0)
		}
		return err
	}
	if sys.FutexWait(word, 1, timeout) == unix.EFAULT {
		return unix.EFAULT // the memory is gone
	}
	return unix.EINTR
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

// Fail makes waits return err once the records already in the ring are
// taken.
func (r *ringEnd) Fail(err error) {
	if r.made() {
		r.wait.Fail(err)
		if r.bell != nil {
			r.bell.Fail(err)
		}
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
		if r.bell != nil {
			// Wakes a Recv parked on it; the descriptor stays open (a
			// poller.FD closes it once no call holds it).
			r.bell.Close()
		}
		r.calls.wait() // from here on, nothing else in this process uses the end
		if r.writer && !r.handedOff.Load() && r.wait.Failure() == nil && r.m.faultErr() == nil {
			r.closeErr = postEOS(r.linger, func() error { return r.m.access(r.tryPostEOS) })
		}
		r.releaseBells()
		r.closeErr = errors.Join(r.closeErr, r.m.Close())
	})
	return r.closeErr
}

// isRingFile reports whether fd is a shared memory object or file that
// holds a ring (its first bytes are the ring magic).
func isRingFile(fd int) bool { return hasMagic(fd, ringMagic, ringHeader+64) }

// hasMagic reports whether fd is a shared memory object or file of at
// least size bytes that starts with the 8-byte magic.
func hasMagic(fd int, magic string, size int64) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size < size {
		return false
	}
	var got [8]byte
	n, err := unix.Pread(fd, got[:], 0)
	return err == nil && n == len(got) && string(got[:]) == magic
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
	return newRingEnd(own, rm, writer, cfg)
}

func ringSenderOn[T any](fd int, desc string, cfg *transport.Config) (*ipcchan.Sender[T], error) {
	r, err := ringEndOn(fd, desc, true, cfg)
	if err != nil {
		return nil, err
	}
	return senderOver[T](r.transport(), cfg)
}

func ringReceiverOn[T any](fd int, desc string, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	r, err := ringEndOn(fd, desc, false, cfg)
	if err != nil {
		return nil, err
	}
	return receiverOver[T](r.transport(), cfg)
}

// awaitFormat waits, if cfg says so (ipcchan.WithWaitForCreate), until the
// ring's creator has formatted m: the version word, which FormatRing
// stores last, is set. Memory has no event to wait on: it polls.
func awaitFormat(m *Mapping, cfg *transport.Config) error {
	desc := "ring in " + m.desc
	wctx, release, err := waitContext(cfg, nil, "open", desc)
	if err != nil || wctx == nil {
		return err
	}
	defer release()
	return awaitCreate(wctx, desc, "", func() (openState, error) {
		var v uint32
		err := m.access(func() error {
			if len(m.data) >= ringHeader {
				v = atomic.LoadUint32((*uint32)(unsafe.Pointer(&m.data[offVersion])))
			}
			return nil
		})
		if err == nil && v == 0 {
			return notReady, nil
		}
		return opened, m.opErr("open ring", err)
	})
}
