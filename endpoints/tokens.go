package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/ipcchan/go/ipcchan"
)

// Token channels: a semaphore or a lock seen as a channel of struct{}
// values. Send posts a token (releases); Recv takes one (acquires), so
// they work in ipcchan.Select (polled, every millisecond backing off to
// 50 ms while idle: these have no descriptor) and with WatchPeer. A counter has no end of stream: Recv
// never returns io.EOF, and closing an end leaves the object as it is.

// tokens is what a token channel moves.
type tokens struct {
	desc    string
	acquire func(context.Context) error
	try     func() (bool, error) // false, nil: nothing to take now
	release func() error
	// tryFirst says that try is cheap (a semaphore's CAS): RecvMsg tries
	// it before it sets up a cancellable wait.
	tryFirst bool

	stopped atomic.Bool // closed or failed: state has something to say
	mu      sync.Mutex
	closed  bool
	failed  error
	cancels map[*context.CancelFunc]struct{}
}

func newTokens(desc string, acquire func(context.Context) error, try func() (bool, error), release func() error) *tokens {
	return &tokens{desc: desc, acquire: acquire, try: try, release: release, cancels: map[*context.CancelFunc]struct{}{}}
}

func (t *tokens) String() string  { return t.desc }
func (t *tokens) MaxMsgSize() int { return 0 }

var errTokenPayload = errors.New("a token channel carries struct{} only")

func (t *tokens) state() error {
	if !t.stopped.Load() {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return os.ErrClosed
	case t.failed != nil:
		return t.failed
	}
	return nil
}

// SendMsg posts one token.
func (t *tokens) SendMsg(_ context.Context, _ uint32, msg []byte) error { return t.TrySendMsg(0, msg) }

// TrySendMsg posts one token: posting never waits.
func (t *tokens) TrySendMsg(_ uint32, msg []byte) error {
	if len(msg) != 0 {
		return errTokenPayload
	}
	if err := t.state(); err != nil {
		return err
	}
	return t.release()
}

// RecvMsg takes one token, waiting; Close and Fail end the wait.
func (t *tokens) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	if t.tryFirst && !t.stopped.Load() {
		// A token there now needs no wait to cancel: no context, no
		// registration, no allocation.
		switch ok, err := t.try(); {
		case err != nil:
			return err
		case ok:
			return deliver(0, nil)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	t.mu.Lock()
	if t.closed || t.failed != nil {
		t.mu.Unlock()
		return t.state()
	}
	t.cancels[&cancel] = struct{}{}
	t.mu.Unlock()
	err := t.acquire(ctx)
	t.mu.Lock()
	delete(t.cancels, &cancel)
	t.mu.Unlock()
	if err != nil {
		if serr := t.state(); serr != nil && errors.Is(err, context.Canceled) {
			return serr // cancelled by Close or Fail, not by the caller
		}
		return err
	}
	return deliver(0, nil)
}

// TryRecvMsg takes a token if one is there.
func (t *tokens) TryRecvMsg(deliver func(uint32, []byte) error) error {
	if err := t.state(); err != nil {
		return err
	}
	ok, err := t.try()
	switch {
	case err != nil:
		return err
	case !ok:
		return ipcchan.ErrWouldBlock
	}
	return deliver(0, nil)
}

func (t *tokens) stop(closed bool, err error) {
	t.mu.Lock()
	if closed {
		t.closed = true
	} else if t.failed == nil {
		t.failed = err
	}
	t.stopped.Store(true)
	for c := range t.cancels {
		(*c)()
	}
	t.mu.Unlock()
}

// Fail ends waits with err (WatchPeer).
func (t *tokens) Fail(err error) { t.stop(false, err) }

// Close ends waits; the semaphore or lock stays as it is.
func (t *tokens) Close() error { t.stop(true, nil); return nil }

// SemaphoreSender returns a Sender whose Send posts a token on s. It
// returns an error for a nil Semaphore or one nobody made, as do
// SemaphoreReceiver, SemSetSender, SemSetReceiver and LockChannel.
func SemaphoreSender(s *Semaphore) (*ipcchan.Sender[struct{}], error) {
	if !s.made() {
		return nil, s.notMade("open")
	}
	return ipcchan.NewSender[struct{}](semTokens(s))
}

// SemaphoreReceiver returns a Receiver whose Recv takes a token from s.
func SemaphoreReceiver(s *Semaphore) (*ipcchan.Receiver[struct{}], error) {
	if !s.made() {
		return nil, s.notMade("open")
	}
	return ipcchan.NewReceiver[struct{}](semTokens(s))
}

func semTokens(s *Semaphore) *tokens {
	t := newTokens(s.desc,
		func(ctx context.Context) error { return s.Acquire(ctx, 1) },
		func() (bool, error) { return s.tryAcquire(1) },
		s.Post)
	t.tryFirst = true
	return t
}

// SemSetSender returns a Sender whose Send adds a token to counter num of
// set, and SemSetReceiver a Receiver whose Recv takes one. Tokens are
// not undone when a process exits (they are messages, not holdings).
func SemSetSender(set *SemSet, num int) (*ipcchan.Sender[struct{}], error) {
	if !set.isMade() {
		return nil, set.notMade("open")
	}
	return ipcchan.NewSender[struct{}](semSetTokens(set, num))
}

// SemSetReceiver: see [SemSetSender].
func SemSetReceiver(set *SemSet, num int) (*ipcchan.Receiver[struct{}], error) {
	if !set.isMade() {
		return nil, set.notMade("open")
	}
	return ipcchan.NewReceiver[struct{}](semSetTokens(set, num))
}

func semSetTokens(set *SemSet, num int) *tokens {
	return newTokens(fmt.Sprintf("%s counter %d", set.desc, num),
		func(ctx context.Context) error { return set.Op(ctx, SemOp{Num: num, Delta: -1, NoUndo: true}) },
		func() (bool, error) { ok, _ := set.TryOp(SemOp{Num: num, Delta: -1, NoUndo: true}); return ok, nil },
		func() error { _, err := set.TryOp(SemOp{Num: num, Delta: 1, NoUndo: true}); return err })
}

// LockChannel returns the 1-token channel view of l: Recv takes the lock
// (exclusive), Send releases it.
func LockChannel(l *FileLock) (*ipcchan.Sender[struct{}], *ipcchan.Receiver[struct{}], error) {
	if !l.made() {
		return nil, nil, errNotMade("open", "FileLock", "OpenLock")
	}
	t := newTokens(l.desc, l.Lock, func() (bool, error) { return l.TryLock(), nil }, l.Unlock)
	tx, err := ipcchan.NewSender[struct{}](t)
	if err != nil {
		return nil, nil, err
	}
	rx, err := ipcchan.NewReceiver[struct{}](t)
	return tx, rx, err
}
