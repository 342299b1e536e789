package natsjs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/ipcchan/go/ipcchan/transport"
)

// The headers of a value (PROTOCOL.md §15).
const (
	hdrMsgID = "Nats-Msg-Id"
	hdrTag   = "Ipcchan-Tag"
)

// defaultEndLinger bounds how long a Sender's Close tries to publish the
// end marker (through a full stream or a failover) before it gives up
// with an error, unless WithLinger says otherwise.
const defaultEndLinger = 30 * time.Second

// sender is the transport.MsgSender of a channel: each message is one
// JetStream publish, acknowledged by the stream before SendMsg returns.
type sender struct {
	c       *Conn
	name    string
	subject string
	id      string // 22-character NUID: this sender's Msg-Id prefix and end subject token
	linger  time.Duration

	mu  sync.Mutex // held by a send and by Close's end marker: one publish in flight
	seq uint64     // the last value's sequence number (from 1)

	closeOnce   sync.Once
	closed      chan struct{}
	closeCtx    context.Context // cancelled by Close: stops a send in progress
	closeCancel context.CancelFunc
	closeErr    error

	failMu  sync.Mutex
	failErr error // set by Fail
}

func newSender(c *Conn, name string) *sender {
	s := &sender{c: c, name: name, subject: valueSubject(name), id: nuid.Next(), linger: defaultEndLinger, closed: make(chan struct{})}
	s.closeCtx, s.closeCancel = context.WithCancel(context.Background())
	return s
}

// abandon closes a sender that never sent, without an end marker.
func (s *sender) abandon() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.closeCancel()
	})
}

func (s *sender) String() string { return endpointName(s.name) + " (sender " + s.id + ")" }

// MaxMsgSize is the server's max_payload less room for the headers.
func (s *sender) MaxMsgSize() int {
	return int(s.c.nc.MaxPayload()) - 256
}

// SendMsg publishes msg and waits for the stream to store it; see
// publish.
func (s *sender) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return transport.WrapError("send", s.String(), os.ErrClosed)
	}
	s.seq++
	m := s.valueMsg(s.seq, tag, msg)
	if err := s.publish(ctx, m, true); err != nil {
		return transport.WrapError("send", s.String(), err)
	}
	return nil
}

// TrySendMsg publishes msg once the stream has room: it returns
// ErrWouldBlock, having stored nothing, when the stream refuses it as
// full. It still waits for the stream's answer (a round trip), and tries
// again for up to attemptTimeout on a timeout or a lost connection, after
// which it returns an error: the value may then have been stored.
func (s *sender) TrySendMsg(tag uint32, msg []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return transport.WrapError("send", s.String(), os.ErrClosed)
	}
	m := s.valueMsg(s.seq+1, tag, msg)
	ctx, cancel := context.WithTimeout(s.closeCtx, attemptTimeout)
	defer cancel()
	wait := time.Millisecond
	for {
		err := s.publishOnce(ctx, m)
		switch {
		case err == nil:
			s.seq++
			return nil
		case errors.Is(err, errFull):
			if ferr := s.failed(); ferr != nil {
				return transport.WrapError("send", s.String(), ferr)
			}
			return transport.ErrWouldBlock
		case !errors.Is(err, errRetry):
			return transport.WrapError("send", s.String(), err)
		}
		s.seq++ // the value may be stored: its Msg-Id is used
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if s.isClosed() {
				return transport.WrapError("send", s.String(), os.ErrClosed)
			}
			return transport.WrapError("send", s.String(), fmt.Errorf("no answer from the stream within %v (the value may have been stored): %w", attemptTimeout, err))
		case <-t.C:
		}
		s.seq-- // try again with the same Msg-Id
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// valueMsg builds the message of value seq.
func (s *sender) valueMsg(seq uint64, tag uint32, msg []byte) *nats.Msg {
	m := nats.NewMsg(s.subject)
	m.Data = msg
	m.Header.Set(hdrMsgID, s.id+"."+strconv.FormatUint(seq, 10))
	if tag != 0 {
		m.Header.Set(hdrTag, strconv.FormatUint(uint64(tag), 10))
	}
	return m
}

// Fail makes every send that would wait for room, now or later, return
// err (ipcchan's WatchPeer: the receiving process is gone).
func (s *sender) Fail(err error) {
	s.failMu.Lock()
	if s.failErr == nil {
		s.failErr = err
	}
	s.failMu.Unlock()
}

func (s *sender) failed() error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.failErr
}

func (s *sender) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// pubAck is the stream's answer to a publish.
type pubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// attemptTimeout bounds one publish's wait for the stream's answer (and
// one acknowledgement's): then it is tried again.
const attemptTimeout = 2 * time.Second

// errFull marks a publish the stream refused because it is full: nothing
// was stored.
var errFull = errors.New("the stream is full")

// errRetry marks a publish outcome that is retried with the same Msg-Id.
var errRetry = errors.New("retry")

// publishOnce publishes m once and classifies the outcome: nil (stored,
// or a duplicate of a stored one), an error wrapping errRetry (nothing
// known to be stored, or the stream is full: try again), or a final error.
func (s *sender) publishOnce(ctx context.Context, m *nats.Msg) error {
	// A publish in flight is not abandoned when ctx ends: its answer says
	// whether the value was stored, which the caller must know (a Send
	// that returns ctx.Err() has sent nothing). It is bounded by the
	// attempt's own timeout.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptTimeout)
	resp, err := s.c.nc.RequestMsgWithContext(actx, m)
	cancel()
	if err != nil {
		switch {
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout),
			errors.Is(err, nats.ErrNoResponders), errors.Is(err, nats.ErrConnectionReconnecting),
			errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrReconnectBufExceeded):
			return fmt.Errorf("%w: %v", errRetry, err)
		case errors.Is(err, nats.ErrConnectionClosed):
			return fmt.Errorf("the natsjs.Conn is closed: %w", os.ErrClosed)
		}
		return err
	}
	var ack pubAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("the stream's acknowledgement is not JSON (%q): is %s a JetStream subject?", resp.Data, m.Subject)
	}
	if ack.Error != nil {
		d := ack.Error.Description
		switch {
		case strings.Contains(d, "maximum messages") || strings.Contains(d, "maximum bytes"):
			// The stream is full: back-pressure, not loss.
			return fmt.Errorf("%w: %w: %s", errRetry, errFull, d)
		case ack.Error.Code == 503 || strings.Contains(d, "no leader") || strings.Contains(d, "not leader"):
			return fmt.Errorf("%w: %s", errRetry, d)
		}
		return fmt.Errorf("the stream refused the value: %s (code %d, err_code %d)", d, ack.Error.Code, ack.Error.ErrCode)
	}
	if ack.Stream == "" {
		return fmt.Errorf("%w: an acknowledgement without a stream", errRetry)
	}
	return nil
}

// publish publishes m until the stream stores it (or reports it a
// duplicate of one stored), retrying with the same Msg-Id — so the stream
// drops a copy it already holds — on a timeout, a lost connection, no
// responders or no leader, and while the stream is full, backing off from
// 1 ms to 100 ms. It returns ctx.Err() when ctx ends first, and os.ErrClosed
// when the sender is closed (if closable) meanwhile; the value may then
// have been stored by a publish whose answer was not seen.
func (s *sender) publish(ctx context.Context, m *nats.Msg, closable bool) error {
	if closable {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		stop := context.AfterFunc(s.closeCtx, cancel)
		defer stop()
	}
	wait := time.Millisecond
	for {
		err := s.publishOnce(ctx, m)
		if err == nil || !errors.Is(err, errRetry) {
			return err
		}
		if errors.Is(err, errFull) {
			if ferr := s.failed(); ferr != nil {
				return ferr
			}
		}
		if ctx.Err() != nil {
			if closable && s.isClosed() {
				return os.ErrClosed
			}
			return ctx.Err()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			if closable && s.isClosed() {
				return os.ErrClosed
			}
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// Close publishes the end marker, once every value this sender sent has
// been stored (a SendMsg in progress is stopped first: it returns
// os.ErrClosed), and releases the sender. Close is idempotent.
func (s *sender) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.closeCancel()
		s.mu.Lock() // wait for a send in progress to stop
		defer s.mu.Unlock()
		m := nats.NewMsg(endSubject(s.name, s.id))
		m.Header.Set(hdrMsgID, s.id+".end")
		ctx, cancel := context.WithTimeout(context.Background(), s.linger)
		defer cancel()
		if err := s.publish(ctx, m, false); err != nil {
			s.closeErr = transport.WrapError("close", s.String(), fmt.Errorf("the end marker was not stored (receivers will wait for it): %w", err))
		}
	})
	return s.closeErr
}
