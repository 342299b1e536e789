package endpoints

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"

	"github.com/ipcchan/go/ipcchan"
)

// connBase is the receive buffer a connection may hold on its own. Only
// what its buffer grows beyond that, for a longer message, is drawn from
// the memory its listener's connections share (ipcchan.WithConnMemory).
const connBase = 2 * readBufferSize

// errMemoryWait is what a receive that must not wait returns while the
// memory it needs is spent: it wraps ErrWouldBlock, so TryRecv says "would
// block", and a Select polls rather than waits on a descriptor that stays
// readable.
var errMemoryWait = fmt.Errorf("%w: waiting for receive memory (ipcchan.WithConnMemory)", ipcchan.ErrWouldBlock)

// errLeftShort is what the wait for memory returns when the peer has hung
// up without sending the rest of the record.
var errLeftShort = errors.New("the peer hung up inside a frame")

// connMemory is the receive memory that the connections accepted from one
// Listener share beyond connBase each.
//
// A connection draws on it as the bytes of a long message arrive, never for
// what a header announces, and gives it back once the message is delivered
// or the connection closed. Grants follow the banker's algorithm: memory is
// granted only if afterwards the connections holding some could still all
// finish their messages, one after another, with what is left. So
// connections that each hold part of what they need never wait for one
// another for ever; a peer that stops in the middle of a message keeps what
// it holds, and the others have the rest. It is safe for concurrent use.
type connMemory struct {
	limit int

	mu      sync.Mutex
	used    int                              // the sum of the shares' held
	holders map[*memShare]struct{}           // shares holding memory
	waiters map[*memShare]context.CancelFunc // woken when memory is given back
	scratch []memNeed
}

// memShare is one connection's draw on a connMemory. Its receive goroutine
// grows and releases it; Close may close it at any time.
type memShare struct {
	m      *connMemory
	held   int // bytes beyond connBase that its buffer holds
	want   int // bytes beyond connBase that its message needs in all
	closed bool
}

type memNeed struct{ rest, held int }

func newConnMemory(limit int) *connMemory {
	return &connMemory{limit: limit, holders: map[*memShare]struct{}{}, waiters: map[*memShare]context.CancelFunc{}}
}

func (m *connMemory) share() *memShare { return &memShare{m: m} }

// tooLarge is the error for a record of n bytes that needs more than the
// whole of m.
func (m *connMemory) tooLarge(n int) error {
	return fmt.Errorf("%w: a %d-byte frame needs more receive memory than all connections of this listener share (%d bytes beyond %d KiB each): raise it with ipcchan.WithConnMemory",
		ipcchan.ErrFrameTooLarge, n, m.limit, connBase>>10)
}

// try raises s's holding to held bytes, for a message that needs want in
// all (want >= held), if that is safe now, and reports whether it did. If
// not, and wake is not nil, wake is called the next time memory is given
// back (or s closed). It returns an error wrapping os.ErrClosed once s is
// closed.
func (s *memShare) try(held, want int, wake context.CancelFunc) (bool, error) {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.closed {
		return false, os.ErrClosed
	}
	if s.held > 0 {
		s.want = want // the others' safety counts on what s still needs
	}
	if !m.safe(s, held, want) {
		if wake != nil {
			m.waiters[s] = wake
		}
		return false, nil
	}
	m.used += held - s.held
	s.held, s.want = held, want
	m.holders[s] = struct{}{}
	delete(m.waiters, s)
	return true, nil
}

// safe reports whether s may hold held bytes towards want: whether, after
// that, every holder could finish in turn, each taking the rest it needs
// from what is free and then giving back all it holds. The caller holds mu.
func (m *connMemory) safe(s *memShare, held, want int) bool {
	free := m.limit - (m.used - s.held + held)
	if free < 0 {
		return false
	}
	needs := append(m.scratch[:0], memNeed{want - held, held})
	for h := range m.holders {
		if h != s {
			needs = append(needs, memNeed{max(h.want-h.held, 0), h.held})
		}
	}
	m.scratch = needs[:0]
	slices.SortFunc(needs, func(a, b memNeed) int { return cmp.Compare(a.rest, b.rest) })
	for _, n := range needs {
		if n.rest > free {
			return false
		}
		free += n.held
	}
	return true
}

// release lowers s's holding to held bytes (less than it holds) once its
// buffer has shrunk, and wakes the connections waiting for memory.
func (s *memShare) release(held int) {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.closed || held >= s.held {
		return
	}
	m.used -= s.held - held
	s.held, s.want = held, held
	if held == 0 {
		delete(m.holders, s)
	}
	m.wake()
}

// close gives back all s holds, and wakes a receive waiting on s.
func (s *memShare) close() {
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	m.used -= s.held
	s.held, s.want = 0, 0
	delete(m.holders, s)
	m.wake() // s's own wait among them
}

// wake wakes every receive waiting for memory; the caller holds mu.
func (m *connMemory) wake() {
	for s, wake := range m.waiters {
		wake()
		delete(m.waiters, s)
	}
}
