package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// SemSet is a System V semaphore set: n counters that semop changes
// atomically, several at once. Operations are undone by the kernel when
// the process that made them exits (SEM_UNDO), unless asked otherwise, so
// a holder that crashes gives its tokens back. A SemSet is a handle: it
// needs no closing; the set lives until [SemSet.Remove]. Its methods are
// safe for concurrent use.
type SemSet struct {
	id   int
	n    int
	desc string

	mu     sync.Mutex
	calls  map[*poller.Blocking]struct{} // blocked calls, for Close and Fail
	closed bool
}

// SemOp is one operation of [SemSet.Op]: add Delta to counter Num (a
// negative Delta waits until the counter can pay it; zero waits for the
// counter to be zero). NoUndo keeps the kernel from undoing it at exit.
type SemOp struct {
	Num    int
	Delta  int
	NoUndo bool
}

// CreateSemSet creates a set of n counters, all 0, for key (IPCPrivate: a
// new private one), with the permission of ipcchan.WithPerm (0600 by
// default; the one option it honours) and IPC_EXCL: an existing set is
// refused (wrapping os.ErrExist).
func CreateSemSet(key Key, n int, opts ...ipcchan.Option) (*SemSet, error) {
	cfg, err := newConfig("create", fmt.Sprintf("sysv sem key %#x", key), optCreate, opts)
	if err != nil {
		return nil, err
	}
	perm := int(cfg.Perm())
	id, err := sys.Semget(key, n, unix.IPC_CREAT|unix.IPC_EXCL|perm)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: fmt.Sprintf("sysv sem key %#x", key), Err: limitErr(err, sysvSemKind)}
	}
	return SemSetByID(id, n), nil
}

// OpenSemSet returns the existing set for key, as its creator made it.
func OpenSemSet(key Key) (*SemSet, error) {
	id, err := sys.Semget(key, 0, 0)
	if err != nil {
		return nil, opErr("open", fmt.Sprintf("sysv sem key %#x", key), err)
	}
	var ds sys.SemidDs
	if err := sys.SemctlStat(id, &ds); err != nil {
		return nil, opErr("open", fmt.Sprintf("sysv sem %d", id), err)
	}
	return SemSetByID(id, int(ds.Nsems)), nil
}

// SemSetByID returns the set with identifier id and n counters, as another
// process reported them.
func SemSetByID(id, n int) *SemSet {
	return &SemSet{id: id, n: n, desc: fmt.Sprintf("sysv sem %d", id), calls: map[*poller.Blocking]struct{}{}}
}

// ID returns the set's identifier (-1 for a set nobody made).
func (s *SemSet) ID() int {
	if !s.isMade() {
		return -1
	}
	return s.id
}

// Len returns the number of counters.
func (s *SemSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}

func (s *SemSet) String() string {
	if !s.isMade() {
		return "zero SemSet"
	}
	return s.desc
}

// isMade reports whether a constructor made s. A zero SemSet's id, 0, may
// well be somebody's set: it must never be used.
func (s *SemSet) isMade() bool { return s != nil && s.desc != "" }

func (s *SemSet) notMade(op string) error {
	return errNotMade(op, "SemSet", "CreateSemSet, OpenSemSet or SemSetByID")
}

func (s *SemSet) ops(ops []SemOp, nowait bool) ([]sys.Sembuf, error) {
	return s.opsInto(make([]sys.Sembuf, len(ops)), ops, nowait)
}

// opsInto fills b (len(ops) long) with the operations.
func (s *SemSet) opsInto(b []sys.Sembuf, ops []SemOp, nowait bool) ([]sys.Sembuf, error) {
	for i, op := range ops {
		if op.Num < 0 || op.Num >= s.n || op.Delta < -32767 || op.Delta > 32767 {
			return nil, fmt.Errorf("operation %+v does not fit a set of %d counters", op, s.n)
		}
		b[i] = sys.Sembuf{Num: uint16(op.Num), Op: int16(op.Delta)}
		if !op.NoUndo {
			b[i].Flg |= sys.SEM_UNDO
		}
		if nowait {
			b[i].Flg |= unix.IPC_NOWAIT
		}
	}
	return b, nil
}

// Op applies every operation at once, waiting until all can be. It
// returns ctx.Err() if ctx ends first (observed within a fraction of a
// millisecond: the wait is a semop on a thread that cancellation
// interrupts with a signal), having done nothing; an error wrapping
// ErrRemoved if the set is removed meanwhile; os.ErrClosed after Close.
func (s *SemSet) Op(ctx context.Context, ops ...SemOp) error {
	switch {
	case !s.isMade():
		return s.notMade("semop")
	case ctx == nil:
		return &ipcchan.OpError{Op: "semop", Endpoint: s.desc, Err: errNilContext}
	}
	// The operations usually go through at once: try without waiting
	// (and without allocating) first.
	if ok, err := s.TryOp(ops...); ok || err != nil {
		return err
	}
	try, err := s.ops(ops, true)
	if err != nil {
		return opErr("semop", s.desc, err)
	}
	block, _ := s.ops(ops, false)
	b := poller.NewBlocking(0, nil)
	if err := s.track(b); err != nil {
		return opErr("semop", s.desc, err)
	}
	defer s.untrack(b)
	err = poller.Do(ctx, b, semopNow, semopWaiting, semopCall{s.id, try, block})
	switch {
	case err == nil, err == context.Canceled, err == context.DeadlineExceeded:
		return err
	case err == unix.EIDRM, err == unix.EINVAL:
		err = fmt.Errorf("%w: the set was removed (%w)", ErrRemoved, err)
	}
	return opErr("semop", s.desc, err)
}

// semopCall is the argument of a waiting Op: the set and its operations,
// without and with IPC_NOWAIT.
type semopCall struct {
	id         int
	try, block []sys.Sembuf
}

func semopNow(c semopCall) error     { return sys.Semop(c.id, c.try) }
func semopWaiting(c semopCall) error { return sys.Semop(c.id, c.block) }

// TryOp applies the operations if that can be done at once, and reports
// whether it did.
func (s *SemSet) TryOp(ops ...SemOp) (bool, error) {
	if !s.isMade() {
		return false, s.notMade("semop")
	}
	if err := s.state(); err != nil {
		return false, opErr("semop", s.desc, err)
	}
	var buf [4]sys.Sembuf
	var b []sys.Sembuf
	var err error
	if len(ops) <= len(buf) {
		b, err = s.opsInto(buf[:len(ops)], ops, true)
	} else {
		b, err = s.ops(ops, true)
	}
	if err == nil {
		err = sys.Semop(s.id, b)
	}
	switch {
	case err == nil:
		return true, nil
	case err == unix.EAGAIN:
		return false, nil
	}
	return false, &ipcchan.OpError{Op: "semop", Endpoint: s.desc, Err: removedErr(err)}
}

// state returns why operations must not go on: os.ErrClosed after Close.
func (s *SemSet) state() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return os.ErrClosed
	}
	return nil
}

func (s *SemSet) track(b *poller.Blocking) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return os.ErrClosed
	}
	s.calls[b] = struct{}{}
	return nil
}

func (s *SemSet) untrack(b *poller.Blocking) {
	s.mu.Lock()
	delete(s.calls, b)
	s.mu.Unlock()
}

// Close makes this handle's blocked and later operations return
// os.ErrClosed; the set itself stays.
func (s *SemSet) Close() error {
	if !s.isMade() {
		return s.notMade("close")
	}
	for _, b := range s.stop(func() { s.closed = true }) {
		b.Close()
	}
	return nil
}

// stop changes the set's state with mark, under its lock, and returns the
// calls blocked now.
func (s *SemSet) stop(mark func()) []*poller.Blocking {
	s.mu.Lock()
	defer s.mu.Unlock()
	mark()
	calls := make([]*poller.Blocking, 0, len(s.calls))
	for b := range s.calls {
		calls = append(calls, b)
	}
	return calls
}

// Value returns counter num's value (GETVAL).
func (s *SemSet) Value(num int) (int, error) {
	if !s.isMade() {
		return 0, s.notMade("getval")
	}
	v, err := sys.Semctl(s.id, num, sys.GETVAL, 0)
	return v, transport.WrapError("getval", s.desc, removedErr(err))
}

// SetValue sets counter num (SETVAL), clearing every process's undo record
// for it.
func (s *SemSet) SetValue(num, v int) error {
	if !s.isMade() {
		return s.notMade("setval")
	}
	_, err := sys.Semctl(s.id, num, sys.SETVAL, v)
	return transport.WrapError("setval", s.desc, removedErr(err))
}

// SemStats describes a counter of a set.
type SemStats struct {
	Value   int // GETVAL
	Waiting int // processes waiting to decrease it (GETNCNT)
	LastPID int // the last process to change it (GETPID)
	Mode    uint32
}

// Stats returns counter num's state.
func (s *SemSet) Stats(num int) (SemStats, error) {
	if !s.isMade() {
		return SemStats{}, s.notMade("stat")
	}
	var st SemStats
	var ds sys.SemidDs
	err := sys.SemctlStat(s.id, &ds)
	if err == nil {
		st.Mode = uint32(ds.Perm.Mode) & 0o777
		st.Value, err = sys.Semctl(s.id, num, sys.GETVAL, 0)
	}
	if err == nil {
		st.Waiting, err = sys.Semctl(s.id, num, sys.GETNCNT, 0)
	}
	if err == nil {
		st.LastPID, err = sys.Semctl(s.id, num, sys.GETPID, 0)
	}
	return st, transport.WrapError("stat", s.desc, removedErr(err))
}

// Remove destroys the set (IPC_RMID): blocked operations in every process
// end with an error wrapping ErrRemoved.
func (s *SemSet) Remove() error {
	if !s.isMade() {
		return s.notMade("remove")
	}
	_, err := sys.Semctl(s.id, 0, unix.IPC_RMID, 0)
	return transport.WrapError("remove", s.desc, err)
}

// Counter returns counter num of the set as a Weighted-style semaphore:
// Acquire(ctx, n), TryAcquire(n), Release(n), with SEM_UNDO.
func (s *SemSet) Counter(num int) *SemCounter { return &SemCounter{s: s, num: num} }

// SemCounter is one counter of a [SemSet] with the method set of
// golang.org/x/sync/semaphore.Weighted, across processes.
type SemCounter struct {
	s   *SemSet
	num int
}

// Acquire takes n tokens, waiting; see [SemSet.Op]. As with Weighted,
// Acquire of 0 tokens takes nothing and returns at once (a semop of 0
// would wait for the counter to be zero); a negative n is refused with an
// error.
func (c *SemCounter) Acquire(ctx context.Context, n int64) error {
	if c == nil || c.s == nil {
		return errNotMade("acquire", "SemCounter", "SemSet.Counter")
	}
	switch {
	case n < 0:
		return &ipcchan.OpError{Op: "semop", Endpoint: c.s.String(), Err: fmt.Errorf("cannot take %d tokens", n)}
	case n == 0:
		return c.s.noOp(ctx)
	}
	return c.s.Op(ctx, SemOp{Num: c.num, Delta: -int(n)})
}

// TryAcquire takes n tokens if it can at once. Taking 0 tokens always
// can (on a set that is open); a negative n never can.
func (c *SemCounter) TryAcquire(n int64) bool {
	if c == nil || c.s == nil || n < 0 {
		return false
	}
	if n == 0 {
		return c.s.noOp(context.Background()) == nil
	}
	ok, _ := c.s.TryOp(SemOp{Num: c.num, Delta: -int(n)})
	return ok
}

// noOp is an operation on no tokens: it checks what Op checks and does
// nothing.
func (s *SemSet) noOp(ctx context.Context) error {
	switch {
	case !s.isMade():
		return s.notMade("semop")
	case ctx == nil:
		return &ipcchan.OpError{Op: "semop", Endpoint: s.desc, Err: errNilContext}
	}
	if err := s.state(); err != nil {
		return opErr("semop", s.desc, err)
	}
	return nil
}

// Release gives n tokens back. It panics if the kernel refuses (the value
// would pass SEMVMX, or the set is gone), as Weighted.Release panics on
// misuse; use [SemSet.TryOp] for an error instead. On a counter of a
// closed SemSet, or one nobody made, it does nothing: that handle no
// longer reaches the set. Releasing 0 tokens does nothing; releasing a
// negative number panics, as Weighted's does.
func (c *SemCounter) Release(n int64) {
	if c == nil || !c.s.isMade() || c.s.state() == os.ErrClosed || n == 0 {
		return
	}
	if n < 0 {
		panic(fmt.Errorf("ipcchan: release %d tokens of %s counter %d", n, c.s.desc, c.num))
	}
	if ok, err := c.s.TryOp(SemOp{Num: c.num, Delta: int(n)}); !ok || err != nil {
		panic(errors.Join(fmt.Errorf("ipcchan: release %d tokens of %s counter %d", n, c.s.desc, c.num), err))
	}
}
