package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/ipcchan/go/ipcchan/transport"
)

// The consumer settings of a ReceiverConfig left 0.
const (
	defaultWorkName   = "work"
	defaultAckWait    = 5 * time.Second
	ephemeralInactive = 2 * time.Minute // an ephemeral subscriber's consumer outlives its process by this
	pullExpires       = 5 * time.Second // a pull's life on the server; then the receiver pulls again
	endedPullExpires  = time.Second     // the same once the ends are in: the last holders' acks are waited for by polling
)

// receiver is the transport.MsgReceiver of a channel: a pull consumer,
// one value per pull, acknowledged (double ack) before RecvMsg returns.
type receiver struct {
	c        *Conn
	name     string
	stream   jetstream.Stream
	consumer jetstream.Consumer
	cname    string // the consumer's name
	durable  bool
	pullSubj string // $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
	inbox    string // the pulls' replies come to inbox.<pull id>
	max      int
	senders  int

	sub    *nats.Subscription // inbox.*
	endSub *nats.Subscription // the end subjects, core NATS: wakes a waiting receive
	endsIn chan struct{}      // cap 1: an end marker was published

	mu      sync.Mutex
	waiting bool            // a receive waits for a value: onMsg hands it over
	pullID  uint64          // the current pull's id
	slot    chan *nats.Msg  // cap 1: the value handed over
	status  chan pullStatus // the current pull's end without a value

	recvMu sync.Mutex // one receive at a time (the Receiver's rule; kept for Close)
	ends   int        // distinct end markers the stream holds, last counted

	stale      bool          // an end marker was published since ends was counted: count again
	staleDelay time.Duration // the wait before counting again

	closeOnce sync.Once
	closed    chan struct{}

	failMu   sync.Mutex
	failErr  error         // set by Fail
	failedCh chan struct{} // closed by Fail
}

// pullStatus is a status message answering a pull: 404 no messages, 408
// request expired, 409 (leadership change, consumer deleted, ...).
type pullStatus struct {
	id   uint64
	code string
	desc string
}

func newReceiver(ctx context.Context, c *Conn, name string, mode Mode, rcfg ReceiverConfig, tcfg *transport.Config) (*receiver, error) {
	cc := jetstream.ConsumerConfig{
		AckPolicy:     jetstream.AckExplicitPolicy,
		MaxAckPending: rcfg.MaxPending,
		AckWait:       rcfg.AckWait,
		FilterSubject: valueSubject(name),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxDeliver:    -1,
	}
	if cc.MaxAckPending == 0 {
		cc.MaxAckPending = 1
	}
	if cc.AckWait == 0 {
		cc.AckWait = defaultAckWait
	}
	durable := true
	switch {
	case rcfg.Name != "":
		if err := checkName("consumer", rcfg.Name); err != nil {
			return nil, err
		}
		if rcfg.Name == endKeeper {
			return nil, fmt.Errorf("%w: consumer name %q is the one that keeps a broadcast's end markers: choose another", errBadName, endKeeper)
		}
		cc.Durable = rcfg.Name
	case mode == WorkQueue:
		cc.Durable = defaultWorkName
	default:
		// An ephemeral subscriber: it starts at the next value, and its
		// consumer goes when the receiver closes (or, if its process
		// dies, after ephemeralInactive without a pull).
		durable = false
		cc.Name = nuid.Next()
		cc.DeliverPolicy = jetstream.DeliverNewPolicy
		cc.InactiveThreshold = ephemeralInactive
	}
	stream, err := jsRetry(ctx, func(ctx context.Context) (jetstream.Stream, error) { return c.js.Stream(ctx, streamName(name)) })
	if err != nil {
		return nil, err
	}
	cons, err := jsRetry(ctx, func(ctx context.Context) (jetstream.Consumer, error) { return stream.CreateOrUpdateConsumer(ctx, cc) })
	if err != nil {
		if mode == WorkQueue && strings.Contains(err.Error(), "workqueue") {
			return nil, fmt.Errorf("%w: the receivers of a work queue share one consumer: give them all the same ReceiverConfig.Name (default %q)", err, defaultWorkName)
		}
		return nil, err
	}
	r := &receiver{
		c: c, name: name, stream: stream, consumer: cons, cname: cons.CachedInfo().Name, durable: durable,
		inbox:   c.nc.NewRespInbox(),
		max:     tcfg.MaxMessageSize(),
		senders: tcfg.Senders(),
		endsIn:  make(chan struct{}, 1),
		slot:    make(chan *nats.Msg, 1),
		status:  make(chan pullStatus, 1),
		closed:  make(chan struct{}),

		failedCh: make(chan struct{}),
	}
	r.pullSubj = "$JS.API.CONSUMER.MSG.NEXT." + streamName(name) + "." + r.cname
	if r.sub, err = c.nc.Subscribe(r.inbox+".*", r.onMsg); err == nil {
		r.endSub, err = c.nc.Subscribe(endSubjects(name), func(*nats.Msg) {
			select {
			case r.endsIn <- struct{}{}:
			default:
			}
		})
	}
	if err == nil {
		err = r.countEnds(ctx)
	}
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *receiver) String() string {
	return endpointName(r.name) + " (consumer " + r.cname + ")"
}

// onMsg runs on the subscription's goroutine for every reply to a pull.
// A value goes to the waiting receive; with none waiting (its context
// ended) it is Nak'ed — delivered again at once, never dropped.
func (r *receiver) onMsg(m *nats.Msg) {
	if code := m.Header.Get("Status"); code != "" && len(m.Data) == 0 {
		id, _ := strconv.ParseUint(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:], 10, 64)
		if code == "100" {
			return // a heartbeat
		}
		st := pullStatus{id: id, code: code, desc: m.Header.Get("Description")}
		r.mu.Lock()
		if id == r.pullID {
			select {
			case r.status <- st:
			default:
			}
		}
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	if r.waiting {
		select {
		case r.slot <- m:
			r.mu.Unlock()
			return
		default:
		}
	}
	r.mu.Unlock()
	m.Respond([]byte("-NAK"))
}

// pull asks for one value (noWait: only one there now) on a fresh pull id,
// with the receive marked waiting.
func (r *receiver) pull(expires time.Duration, noWait bool) error {
	r.mu.Lock()
	r.waiting = true
	r.pullID++
	id := r.pullID
	select {
	case <-r.status: // a stale status
	default:
	}
	r.mu.Unlock()
	req := struct {
		Batch   int           `json:"batch"`
		Expires time.Duration `json:"expires,omitempty"`
		NoWait  bool          `json:"no_wait,omitempty"`
	}{Batch: 1, Expires: expires, NoWait: noWait}
	b, _ := json.Marshal(req)
	return r.c.nc.PublishRequest(r.pullSubj, r.inbox+"."+strconv.FormatUint(id, 10), b)
}

// stopWaiting ends a receive's wait; a value handed over meanwhile is
// Nak'ed (delivered again at once).
func (r *receiver) stopWaiting() {
	r.mu.Lock()
	r.waiting = false
	var m *nats.Msg
	select {
	case m = <-r.slot:
	default:
	}
	r.mu.Unlock()
	if m != nil {
		m.Respond([]byte("-NAK"))
	}
}

// countEnds counts the distinct end markers the stream holds.
func (r *receiver) countEnds(ctx context.Context) error {
	info, err := jsRetry(ctx, func(ctx context.Context) (*jetstream.StreamInfo, error) {
		return r.stream.Info(ctx, jetstream.WithSubjectFilter(endSubjects(r.name)))
	})
	if err != nil {
		return err
	}
	r.ends = len(info.State.Subjects)
	return nil
}

// ended reports whether the channel has ended for this receiver: enough
// end markers, and every value taken (empty).
//
// An end marker's publish wakes the receiver (its core subscription) as
// the stream stores it, not after: a count right after the wake may miss
// it. So a wake makes the count stale until it grows, and a stale count
// is taken again on each turn of a receive, which then waits on a short
// timer (staleWait) rather than the pull alone.
func (r *receiver) ended(ctx context.Context) (bool, error) {
	select {
	case <-r.endsIn:
		r.stale, r.staleDelay = true, 0
	default:
	}
	if r.stale {
		before := r.ends
		if err := r.countEnds(ctx); err != nil {
			return false, err
		}
		if r.ends > before || r.staleDelay >= time.Second {
			r.stale = false
		}
	}
	if r.ends < r.senders {
		return false, nil
	}
	return r.empty(ctx)
}

// empty reports whether this receiver's consumer has taken every value
// the stream holds: nothing unacknowledged, and its ack floor at or past
// the stream's last value (or no value left at all: a work queue deletes
// what is acknowledged).
//
// It does not trust the consumer's count of pending values: a consumer
// leader just elected during a failover, on a node whose copy of the
// stream is not current, answered NumPending 0 with 420 values still in
// the stream, and the receiver ended the channel without them
// (TestFaultNodeKilled in CI). The stream's last value comes from the
// stream's leader, which holds every acknowledged publish; a stale ack
// floor is only ever too low, which makes the receiver look again, never
// end early.
func (r *receiver) empty(ctx context.Context) (bool, error) {
	info, err := jsRetry(ctx, r.consumer.Info)
	if err != nil {
		return false, err
	}
	if info.NumAckPending != 0 {
		return false, nil
	}
	last, err := jsRetry(ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) {
		return r.stream.GetLastMsgForSubject(ctx, valueSubject(r.name))
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return info.AckFloor.Stream >= last.Sequence, nil
}

// Fail makes every receive that would wait, now or later, return err once
// the consumer has nothing left for it (ipcchan's WatchPeer: the sending
// process is gone, and will not end the stream).
func (r *receiver) Fail(err error) {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	if r.failErr == nil {
		r.failErr = err
		close(r.failedCh)
	}
}

func (r *receiver) failed() error {
	r.failMu.Lock()
	defer r.failMu.Unlock()
	return r.failErr
}

func (r *receiver) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// RecvMsg pulls one value, calls deliver with it, and acknowledges it
// (double ack) before returning. It returns io.EOF once the channel has
// ended for this receiver.
func (r *receiver) RecvMsg(ctx context.Context, deliver func(tag uint32, payload []byte) error) error {
	r.recvMu.Lock()
	defer r.recvMu.Unlock()
	for {
		if r.isClosed() {
			return transport.WrapError("recv", r.String(), os.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		end, err := r.ended(ctx)
		if err != nil {
			return r.wrapErr(ctx, err)
		}
		if end {
			return io.EOF
		}
		ferr := r.failed()
		if ferr != nil {
			empty, err := r.empty(ctx)
			if err != nil {
				return r.wrapErr(ctx, err)
			}
			if empty {
				return transport.WrapError("recv", r.String(), ferr)
			}
		}
		expires := pullExpires
		failedCh := r.failedCh
		if r.ends >= r.senders || ferr != nil {
			expires = endedPullExpires
			failedCh = nil
		}
		if err := r.pull(expires, false); err != nil {
			r.stopWaiting()
			if errors.Is(err, nats.ErrConnectionClosed) {
				return r.wrapErr(ctx, err)
			}
			if !r.backoff(ctx) {
				return r.wrapErr(ctx, ctx.Err())
			}
			continue
		}
		t := time.NewTimer(expires + time.Second)
		var staleC <-chan time.Time
		if r.stale {
			r.staleDelay = min(max(2*r.staleDelay, 5*time.Millisecond), time.Second)
			st := time.NewTimer(r.staleDelay)
			_ = st // collected once fired or unreferenced (Go 1.23 timers)
			staleC = st.C
		}
		select {
		case <-staleC:
			t.Stop()
			r.stopWaiting()
		case m := <-r.slot:
			t.Stop()
			r.stopWaiting()
			return r.take(ctx, m, deliver)
		case st := <-r.status:
			t.Stop()
			r.stopWaiting()
			if err := r.statusErr(st); err != nil {
				return transport.WrapError("recv", r.String(), err)
			}
			r.stale = true // count the ends again now and then
			if st.code != "404" && st.code != "408" {
				// A leadership change or the like: pull again shortly.
				if !r.backoff(ctx) {
					return ctx.Err()
				}
			}
		case <-r.endsIn:
			t.Stop()
			r.stopWaiting()
			// Count again at the top of the loop.
			select {
			case r.endsIn <- struct{}{}:
			default:
			}
		case <-failedCh:
			t.Stop()
			r.stopWaiting()
		case <-t.C:
			// No answer: the server may have gone; pull again.
			r.stopWaiting()
		case <-ctx.Done():
			t.Stop()
			r.stopWaiting()
			return ctx.Err()
		case <-r.closed:
			t.Stop()
			r.stopWaiting()
			return transport.WrapError("recv", r.String(), os.ErrClosed)
		}
	}
}

// statusErr turns the statuses a receive cannot go on after into errors.
func (r *receiver) statusErr(st pullStatus) error {
	if st.code == "409" && strings.Contains(strings.ToLower(st.desc), "deleted") {
		return fmt.Errorf("the channel's consumer %s was deleted (DeleteChannel, or an ephemeral subscriber idle for %v): open a new Receiver", r.cname, ephemeralInactive)
	}
	if st.code == "400" {
		return fmt.Errorf("the server refused the pull: %s %s", st.code, st.desc)
	}
	return nil
}

// backoff waits a little before trying the server again; false if ctx
// ended or the receiver closed first.
func (r *receiver) backoff(ctx context.Context) bool {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-r.closed:
		return false
	}
}

func (r *receiver) wrapErr(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return ctx.Err()
	}
	if errors.Is(err, nats.ErrConnectionClosed) {
		err = fmt.Errorf("the natsjs.Conn is closed: %w", os.ErrClosed)
	}
	return transport.WrapError("recv", r.String(), err)
}

// parseTag reads a value's Ipcchan-Tag header: absent is 0, else a
// decimal uint32 without sign or leading zeros.
func parseTag(h string) (uint32, error) {
	if h == "" {
		return 0, nil
	}
	if h[0] == '0' || h[0] == '+' || h[0] == '-' {
		return 0, fmt.Errorf("%w: the value's %s header %q is not a decimal tag", transport.ErrDecode, hdrTag, h)
	}
	v, err := strconv.ParseUint(h, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: the value's %s header %q is not a decimal tag", transport.ErrDecode, hdrTag, h)
	}
	return uint32(v), nil
}

// take delivers m and acknowledges it. The value is consumed whatever
// deliver returns; if the acknowledgement is not confirmed, the value
// will come again and take returns an error instead.
func (r *receiver) take(ctx context.Context, m *nats.Msg, deliver func(tag uint32, payload []byte) error) error {
	var derr error
	switch tag, err := parseTag(m.Header.Get(hdrTag)); {
	case err != nil:
		derr = transport.WrapError("recv", r.String(), err)
	case len(m.Data) > r.max:
		derr = transport.WrapError("recv", r.String(), fmt.Errorf("%w: a %d-byte value, over the limit of %d (raise ipcchan.WithMaxMessageSize)", transport.ErrFrameTooLarge, len(m.Data), r.max))
	default:
		derr = deliver(tag, m.Data)
	}
	if err := r.ack(ctx, m); err != nil {
		return err
	}
	return derr
}

// ack acknowledges m and waits for the server to confirm, trying again
// until it does or ctx ends.
func (r *receiver) ack(ctx context.Context, m *nats.Msg) error {
	wait := time.Millisecond
	for {
		// An ack in flight is not abandoned when ctx ends: the server may
		// have recorded it, and its answer says so (abandoned, a value
		// taken would be reported not taken, and never come again).
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptTimeout)
		_, err := r.c.nc.RequestWithContext(actx, m.Reply, []byte("+ACK"))
		cancel()
		if err == nil {
			return nil
		}
		if !r.isClosed() && r.c.nc.IsConnected() {
			// Connected, and no answer: the server may not know this
			// delivery (a server restarted from a store that had not
			// recorded it answers no ack of it). Its consumer's state
			// tells whether the value was taken.
			switch taken, known := r.ackState(context.WithoutCancel(ctx), m.Reply); {
			case taken:
				return nil
			case !known:
				err = fmt.Errorf("the server does not know this delivery (it restarted): %w", err)
				return transport.WrapError("recv", r.String(), fmt.Errorf("%w: the value's acknowledgement was not confirmed, so it will be delivered again (to this or another receiver): %w", ErrAckUnconfirmed, err))
			}
		}
		if ctx.Err() != nil || errors.Is(err, nats.ErrConnectionClosed) || r.isClosed() {
			cause := err
			if ctx.Err() != nil {
				cause = ctx.Err()
			}
			return transport.WrapError("recv", r.String(), fmt.Errorf("%w: the value's acknowledgement was not confirmed, so it will be delivered again (to this or another receiver): %w", ErrAckUnconfirmed, cause))
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// ackState finds out, after acks the server did not answer though the
// connection is up, whether the delivery whose ack subject is reply was
// taken, and whether the server knows it at all. A server restarted from
// its store (the shared server taken over after its process died) may
// have lost its consumer's last state, written behind: it then answers no
// ack of a delivery it does not know, and delivers the value again if the
// stream still holds it. So: taken if the consumer's ack floor passed the
// value, or if the stream no longer holds it (a work queue drops a value
// once acknowledged); not known if the consumer has not delivered that far
// and the stream still holds the value (it will come again). On any doubt
// it says not taken, known: the caller tries the ack again.
func (r *receiver) ackState(ctx context.Context, reply string) (taken, known bool) {
	sseq, dseq, err := parseAckReply(reply)
	if err != nil {
		return false, true
	}
	ictx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	info, err := r.consumer.Info(ictx)
	if err != nil {
		return false, true
	}
	if info.AckFloor.Stream >= sseq {
		return true, true
	}
	if _, err := r.stream.GetMsg(ictx, sseq); errors.Is(err, jetstream.ErrMsgNotFound) {
		return true, true
	} else if err != nil {
		return false, true
	}
	return false, info.Delivered.Consumer >= dseq
}

// parseAckReply reads the stream and consumer sequences of a delivery
// from its ack subject, which the server wrote:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>, or
// the form with a domain and an account hash after $JS.ACK and a token
// more at the end.
func parseAckReply(reply string) (sseq, dseq uint64, err error) {
	toks := strings.Split(reply, ".")
	var i int
	switch {
	case len(toks) == 9 && toks[0] == "$JS" && toks[1] == "ACK":
		i = 5
	case len(toks) >= 12 && toks[0] == "$JS" && toks[1] == "ACK":
		i = 7
	default:
		return 0, 0, fmt.Errorf("%q is not a JetStream ack subject", reply)
	}
	sseq, ok1 := parseDecimal(toks[i])
	dseq, ok2 := parseDecimal(toks[i+1])
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("%q is not a JetStream ack subject: its sequences are not decimal numbers", reply)
	}
	return sseq, dseq, nil
}

// parseDecimal reads a uint64 in its canonical decimal form only.
func parseDecimal(s string) (uint64, bool) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(v, 10) != s {
		return 0, false
	}
	return v, true
}

// ErrAckUnconfirmed is wrapped by the error a Recv returns instead of a
// value whose acknowledgement the server did not confirm (the server or
// the connection was lost meanwhile, or ctx ended): the value was not
// taken, and will be delivered again, to this or another receiver.
var ErrAckUnconfirmed = errors.New("natsjs: acknowledgement not confirmed")

// TryRecvMsg pulls with no wait: it returns ErrWouldBlock when the
// consumer has no value for this receiver now. It still waits for the
// server's answer (a round trip).
func (r *receiver) TryRecvMsg(deliver func(tag uint32, payload []byte) error) error {
	r.recvMu.Lock()
	defer r.recvMu.Unlock()
	if r.isClosed() {
		return transport.WrapError("recv", r.String(), os.ErrClosed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.pull(0, true); err != nil {
		r.stopWaiting()
		return r.wrapErr(ctx, err)
	}
	select {
	case m := <-r.slot:
		r.stopWaiting()
		return r.take(ctx, m, deliver)
	case st := <-r.status:
		r.stopWaiting()
		if err := r.statusErr(st); err != nil {
			return transport.WrapError("recv", r.String(), err)
		}
	case <-ctx.Done():
		r.stopWaiting()
	case <-r.closed:
		r.stopWaiting()
		return transport.WrapError("recv", r.String(), os.ErrClosed)
	}
	end, err := r.ended(ctx)
	if err != nil {
		return r.wrapErr(ctx, err)
	}
	if end {
		return io.EOF
	}
	if ferr := r.failed(); ferr != nil {
		if empty, err := r.empty(ctx); err == nil && empty {
			return transport.WrapError("recv", r.String(), ferr)
		}
	}
	return transport.ErrWouldBlock
}

// Close stops the receiver (a receive in progress returns os.ErrClosed)
// and deletes an ephemeral subscriber's consumer. It is idempotent.
func (r *receiver) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.closed)
		r.recvMu.Lock()
		defer r.recvMu.Unlock()
		if r.sub != nil {
			r.sub.Unsubscribe()
		}
		if r.endSub != nil {
			r.endSub.Unsubscribe()
		}
		r.stopWaiting()
		if !r.durable && !r.c.nc.IsClosed() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if derr := r.stream.DeleteConsumer(ctx, r.cname); derr != nil && !errors.Is(derr, jetstream.ErrConsumerNotFound) {
				err = transport.WrapError("close", r.String(), derr)
			}
		}
	})
	return err
}
