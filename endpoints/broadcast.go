package endpoints

import (
	"errors"
	"os"
	"sync/atomic"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// A broadcast (publish/subscribe) over shared memory: one or more
// publisher processes, any number of subscribers up to a bound, each
// receiving every value in publish order (PROTOCOL.md §13). It is the
// shared-memory ring with one tail per subscriber: a value is written once
// and read in place by every subscriber.

// FormatBroadcast makes m an empty broadcast: a header, a slot for each
// subscriber (ipcchan.WithSubscribers, default 16) and a power-of-two data
// area in the rest of the mapping. ipcchan.WithMaxMessageSize bounds the
// values (default and at most half the data area, less 16 bytes);
// ipcchan.WithLossy makes it lossy (see [Broadcast]). Format a mapping
// once, before any end opens it; formatting a broadcast in use corrupts
// it. Those three are the options it honours.
func FormatBroadcast(m *Mapping, opts ...ipcchan.Option) error {
	if !m.made() {
		return m.notMade("format broadcast")
	}
	cfg, err := newConfig("format broadcast", m.desc, optBcastFormat, opts)
	if err != nil {
		return err
	}
	return formatBroadcastIn(m, cfg)
}

// The options of a broadcast's constructors.
const (
	optBcastFormat = transport.OptMaxMessageSize | transport.OptSubscribers | transport.OptLossy
	optBcastSend   = optMsgSend
	optBcastRecv   = optMsgRecv | transport.OptReplay
)

func formatBroadcastIn(m *Mapping, cfg *transport.Config) error {
	maxPayload := 0 // the most the data area allows
	if cfg.Given(transport.OptMaxMessageSize) {
		maxPayload = cfg.MaxMessageSize()
	}
	if !m.uses.enter() {
		return m.opErr("format broadcast", os.ErrClosed)
	}
	defer m.uses.leave()
	return m.opErr("format broadcast", m.access(func() error {
		return formatBroadcast(m.data, maxPayload, cfg.Subscribers(), cfg.Lossy())
	}))
}

// Broadcast formats m as a broadcast (see [FormatBroadcast]) and returns
// its first publisher: a Sender whose every value each subscriber
// ([Subscribe]) receives, in publish order. m may be a memfd ([NewMemfd]:
// hand it, or a subscriber, to a child with [Pass]), a POSIX shared
// memory object ([CreateShm]: other programs join by name with [OpenShm]
// and Subscribe), a file or a SysV segment; m may be closed afterwards.
//
// The value is encoded once, straight into the shared memory when the
// codec knows its length (as on the ring), and every subscriber reads it
// there. A Send makes no system call unless a subscriber is parked (one
// futex wake for all of them) or it has to wait. By default the broadcast
// is lossless: a Send waits while the slowest subscriber has not read the
// values the new one would overwrite (parked on a futex, holding an OS
// thread, looking at least every 10 ms whether that subscriber's process
// has died — a process killed or a zombie has its slot freed, without its
// help). With ipcchan.WithLossy a Send never waits for subscribers; a
// subscriber that falls behind gets an error wrapping ipcchan.ErrLagged
// that says how many values it lost, and goes on.
//
// Several publisher processes may share a broadcast ([BroadcastSender]);
// give the subscribers ipcchan.WithSenders(n). Close appends an
// end-of-stream record, after which subscribers that have read everything
// get io.EOF. Options: those of FormatBroadcast and of a Sender, and
// WithLinger (how long Close waits for room for its end-of-stream record).
func Broadcast[T any](m *Mapping, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	if !m.made() {
		return nil, m.notMade("broadcast")
	}
	cfg, err := newConfig("create", "broadcast in "+m.desc, optBcastFormat|optBcastSend, opts)
	if err != nil {
		return nil, err
	}
	if err := formatBroadcastIn(m, cfg); err != nil {
		return nil, err
	}
	return broadcastSender[T](m, cfg)
}

// BroadcastSender returns another publisher on the broadcast formatted in
// m (see [Broadcast]): a process publishing besides the first. Publishers
// take turns with a write lock in the shared memory; one that died holding
// it has it taken back. Options: those of a Sender, WithLinger and
// WithWaitForCreate (wait, polling, for a broadcast its creator has not
// formatted yet).
func BroadcastSender[T any](m *Mapping, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	if !m.made() {
		return nil, m.notMade("open broadcast")
	}
	cfg, err := newConfig("open", "broadcast in "+m.desc, optBcastSend|optWait, opts)
	if err != nil {
		return nil, err
	}
	return broadcastSender[T](m, cfg)
}

// Subscribe joins the broadcast formatted in m and returns its Receiver:
// it receives every value published from the next one on (with
// ipcchan.WithReplay, from the oldest the broadcast still holds), in
// publish order, until io.EOF once every publisher has closed
// (ipcchan.WithSenders(n) for n publishers). A subscriber takes one of the
// broadcast's slots (ipcchan.WithSubscribers) until it closes or its
// process dies; when all are taken, Subscribe fails with an error wrapping
// [ErrNoSlot].
//
// A lossless broadcast's subscriber decodes values in place; a lossy
// one's copies each value out and checks that it was not overwritten
// meanwhile, and when it fell behind its receive returns an error
// wrapping ipcchan.ErrLagged (a *ipcchan.LaggedError with the exact count
// lost); the next receive returns the oldest value still held. Receives
// make no system call while values are there; on none, the subscriber
// spins briefly, then parks on a futex (holding an OS thread), which a
// publisher wakes, looking again at least every 50 ms. A subscriber has no
// descriptor: ipcchan.Select polls it. A dead publisher is seen through
// WatchPeer (ipcchan.ErrPeerGone); without it, a subscriber waits for
// values as long as the broadcast is open. Handed to a child with [Pass],
// a subscriber moves there with its slot and position: the child's
// [InheritReceiver] goes on from the value this process would have
// received next (a slot the child has not taken over within 30 s is
// freed). Given with [Share], it stays here, and the child joins with a
// slot of its own, from the next value. Options: those of a
// Receiver, WithSenders, WithReplay and WithWaitForCreate (wait, polling,
// for a broadcast its creator has not formatted yet).
func Subscribe[T any](m *Mapping, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	if !m.made() {
		return nil, m.notMade("subscribe")
	}
	cfg, err := newConfig("subscribe", "broadcast in "+m.desc, optBcastRecv|optWait, opts)
	if err != nil {
		return nil, err
	}
	return subscribe[T](m, cfg)
}

func broadcastSender[T any](m *Mapping, cfg *transport.Config) (*ipcchan.Sender[T], error) {
	e, err := openBroadcastEnd(m, true, cfg)
	if err != nil {
		return nil, err
	}
	return senderOver[T](e, cfg)
}

func subscribe[T any](m *Mapping, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	e, err := openBroadcastEnd(m, false, cfg)
	if err != nil {
		return nil, err
	}
	return receiverOver[T](e, cfg)
}

// broadcastOn makes an end with open (broadcastSender or subscribe) on the
// broadcast in the shared memory fd, which it takes over: an inherited
// publisher, or a subscription of this process's own.
func broadcastOn[E any](fd int, desc string, cfg *transport.Config, open func(*Mapping, *transport.Config) (E, error)) (E, error) {
	m, err := mapWhole(fd, desc, nil)
	if err != nil {
		var zero E
		return zero, err
	}
	defer m.Close()
	return open(m, cfg)
}

// moveSubscription hands the slot of end, if it is a broadcast's
// subscriber moving to a child (Pass, not Share), to the child, at its
// position: the child's InheritReceiver takes it over.
func moveSubscription(end Passable) {
	if r, ok := end.(interface{ Transport() transport.MsgReceiver }); ok {
		if e, ok := r.Transport().(*bcastEnd); ok {
			e.moveSlot()
		}
	}
}

// bcastEnd is a publisher or a subscriber of a broadcast: the transport
// under its Sender or Receiver. re is the ring machinery it shares with
// the ring (ring.go, ring_write.go): its own mapping, the view of the data
// area as a ring, the write lock, the waits and the fault guard.
//
// On memory a peer can shrink (not a sealed memfd or a SysV segment), a
// fault turns into an error wrapping [ErrCorrupt] for good, as on the
// ring.
type bcastEnd struct {
	re  ringEnd
	b   *bcastMem
	pub bool

	// Publisher: the slowest tail found by the last scan of the slots,
	// up to which room is known to exist, and the replaying joins it has
	// seen (one more makes it scan again). Used under the write lock,
	// which the race detector cannot see: hence atomic.
	floorSeen   atomic.Uint64
	replaysSeen atomic.Uint32
	revoked     atomic.Uint64 // slots freed for an invalid tail (tests read it)

	// Subscriber: its slot and owner word, its position (tail), the head
	// last read, the sequence number of the next value, the record found
	// (cur, up to curEnd), held until hand or drop, and, in lossy mode,
	// the copy of its payload and whether it lost values it has not
	// reported yet.
	core       recvCore
	slot       int
	owner      uint64
	ownerWord  *uint64
	tailWord   *uint64
	tail       uint64
	headSeen   uint64
	nextSeq    uint64
	cur        rawMsg
	curEnd     uint64
	curSeq     uint64
	pending    bool // cur was found and a LaggedError returned first
	lagPending bool
	buf        []byte
	fenceWord  atomic.Uint32
}

// openBroadcastEnd opens a publisher (pub) or subscriber on the broadcast
// in m, in a mapping of its own.
func openBroadcastEnd(m *Mapping, pub bool, cfg *transport.Config) (*bcastEnd, error) {
	if !m.made() {
		return nil, m.notMade("open broadcast")
	}
	own, err := m.remap()
	if err != nil {
		return nil, err
	}
	if err := awaitBroadcastFormat(own, cfg); err != nil {
		own.Close()
		return nil, err
	}
	return newBroadcastEnd(own, pub, cfg)
}

// newBroadcastEnd makes an end on the broadcast in own, which it takes
// over (and closes on error); a subscriber joins (takes a slot).
func newBroadcastEnd(own *Mapping, pub bool, cfg *transport.Config) (*bcastEnd, error) {
	desc := "broadcast in " + own.desc
	var b *bcastMem
	err := own.access(func() (err error) {
		b, err = openBroadcast(own.data)
		return err
	})
	if err != nil {
		own.Close()
		return nil, opErr("open", desc, err)
	}
	e := &bcastEnd{b: b, pub: pub, core: newRecvCore("broadcast", cfg.MaxMessageSize(), cfg.Senders())}
	e.re = ringEnd{m: own, r: &b.ring, desc: desc, writer: pub, pid: uint32(os.Getpid()),
		linger: cfg.Linger(), guard: own.guard}
	word := b.ring.rwait
	if pub {
		word = b.ring.wwait
	}
	e.re.wait = poller.NewBlocking(0, func() bool { return e.re.wakeParked(word) == nil })
	e.re.wait.SetMinSpin(ringMinSpin)
	e.re.wait.SpinOnMemory()
	if !pub {
		if b.lossy {
			e.buf = make([]byte, b.maxPayload+bcastSeq)
		}
		if err := own.access(func() error { return e.join(cfg.Replay()) }); err != nil {
			own.Close()
			return nil, opErr("subscribe", desc, err)
		}
	}
	return e, nil
}

// awaitBroadcastFormat waits, if cfg says so (ipcchan.WithWaitForCreate),
// until the broadcast's creator has formatted m (its version word, stored
// last, is set), as awaitFormat does for a ring.
func awaitBroadcastFormat(m *Mapping, cfg *transport.Config) error {
	return awaitFormat(m, cfg)
}

func (e *bcastEnd) String() string {
	if !e.made() {
		return "zero bcastEnd"
	}
	return e.re.desc
}

func (e *bcastEnd) made() bool { return e != nil && e.b != nil }

func (e *bcastEnd) notMade(op string) error {
	return errNotMade(op, "bcastEnd", "Broadcast, BroadcastSender or Subscribe (the Transport of their ends)")
}

// MaxMsgSize is the broadcast's largest value.
func (e *bcastEnd) MaxMsgSize() int {
	if !e.made() {
		return 0
	}
	return e.b.maxPayload
}

// Fail makes waits return err once the values already there are taken
// (WatchPeer); on a publisher, every send from then on, waiting or not:
// once the subscriber it watches is gone (and its slot freed), its values
// would go to nobody, and nothing else would tell it.
func (e *bcastEnd) Fail(err error) {
	if e.made() {
		e.re.wait.Fail(err)
	}
}

func (e *bcastEnd) setHandedOff() { e.re.handedOff.Store(true) }

// File returns a duplicate of the descriptor of the broadcast's memory,
// for another process (not for SysV segments: pass the segment
// identifier). A child opens a publisher or a subscription of its own on
// it ([InheritSender], [InheritReceiver]).
func (e *bcastEnd) File() (*os.File, error) {
	if !e.made() {
		return nil, e.notMade("file")
	}
	return e.re.m.File()
}

// Close wakes this end's blocked calls, which return an error wrapping
// os.ErrClosed, waits until they have returned, and unmaps its memory. A
// publisher first appends an end-of-stream record after everything its
// Sends committed, waiting up to the linger time for room (a publisher
// handed to another process posts none); a subscriber frees its slot,
// waking a publisher that waits for it.
func (e *bcastEnd) Close() error {
	if !e.made() {
		return e.notMade("close")
	}
	r := &e.re
	r.closeOnce.Do(func() {
		r.calls.close()
		r.wait.Close()
		r.calls.wait() // from here on, nothing else in this process uses the end
		switch {
		case !e.pub && r.m.faultErr() == nil: // on memory that is gone, there is no slot to free
			r.closeErr = r.m.access(func() error { e.leaveSlot(); return nil })
		case !e.pub:
		case !r.handedOff.Load() && r.wait.Failure() == nil && r.m.faultErr() == nil:
			r.closeErr = postEOS(r.linger, func() error { return r.m.access(e.tryPostEOS) })
		}
		r.closeErr = errors.Join(r.closeErr, r.m.Close())
	})
	return r.closeErr
}

// fence orders the loads before it (a lossy subscriber's copy of a
// payload) before the loads after it (the oldest position it then
// checks): an atomic read-modify-write is a full barrier on every
// architecture Go supports, where a plain atomic load orders only what
// follows it. The word is the end's own: it costs no cache-line transfer.
func (e *bcastEnd) fence() { e.fenceWord.Add(1) }
