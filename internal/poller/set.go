package poller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
)

// Set waits until any of several descriptors is ready — readable, or
// writable for those added with AddWriteConn — with one parked goroutine
// and no thread: the descriptors go into a private epoll instance whose own
// descriptor is watched by the runtime poller.
//
// Add and Wait must not be called concurrently; Close may be called once
// everything else is done.
type Set struct {
	ep       *FD
	events   [8]unix.EpollEvent
	poll     func(int) error
	interest []fdInterest // what each descriptor added is watched for
}

// fdInterest is the epoll events a Set watches fd for.
type fdInterest struct {
	fd     int
	events uint32
}

// SelectPolls counts the timed rounds of ipcchan.Select: waits bounded by
// the poll interval because a case cannot be waited on. Tests read it, to see
// that a Select waited on descriptors only.
var SelectPolls atomic.Uint64

// SelectWaits counts the waits of ipcchan.Select, timed or not: the rounds
// after which it tries its cases again. Tests read it, to see that a
// Select slept until woken rather than spinning on a descriptor that is
// always ready.
var SelectWaits atomic.Uint64

// readEvents and writeEvents are what a Set watches a descriptor for, to
// read from it and to write to it; a hang-up and an error are reported
// with either.
const (
	readEvents  = unix.EPOLLIN | unix.EPOLLRDHUP
	writeEvents = unix.EPOLLOUT
)

// NewSet returns an empty Set.
func NewSet() (*Set, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", sys.DescriptorLimit(err))
	}
	ep, err := Open(epfd, "epoll set")
	if err != nil {
		return nil, err
	}
	s := &Set{ep: ep}
	s.poll = s.pollOnce
	return s, nil
}

// AddConn adds the descriptor behind rc, to be reported when readable (or
// hung up). It returns os.ErrClosed if that descriptor is closed.
func (s *Set) AddConn(rc syscall.RawConn) error { return s.addConn(rc, readEvents) }

// AddWriteConn adds the descriptor behind rc, to be reported when writable
// (or in error, or hung up). A descriptor added with both AddConn and
// AddWriteConn is reported for either. It returns os.ErrClosed if that
// descriptor is closed.
func (s *Set) AddWriteConn(rc syscall.RawConn) error { return s.addConn(rc, writeEvents) }

func (s *Set) addConn(rc syscall.RawConn, events uint32) error {
	var addErr error
	err := rc.Control(func(fd uintptr) { addErr = s.add(int(fd), events) })
	if err != nil {
		return err
	}
	return addErr
}

// AddFD adds fd, to be reported when readable. The caller keeps fd open
// while it may be reported; closing it removes it from the set. Adding a
// descriptor the set holds already does nothing.
func (s *Set) AddFD(fd int) error {
	err := s.ctl(unix.EPOLL_CTL_ADD, fd, readEvents)
	if err == unix.EEXIST {
		return nil
	}
	return err
}

// add watches the descriptor fd of a connection for events too, with what
// it is watched for already. The connections' interests are remembered
// (their number is that of a Select's cases); a descriptor that AddFD
// added is watched for reading.
func (s *Set) add(fd int, events uint32) error {
	i := slices.IndexFunc(s.interest, func(in fdInterest) bool { return in.fd == fd })
	if i < 0 {
		err := s.ctl(unix.EPOLL_CTL_ADD, fd, events)
		if err == unix.EEXIST {
			events |= readEvents
			err = s.ctl(unix.EPOLL_CTL_MOD, fd, events)
		}
		if err == nil {
			s.interest = append(s.interest, fdInterest{fd, events})
		}
		return err
	}
	events |= s.interest[i].events
	err := s.ctl(unix.EPOLL_CTL_MOD, fd, events)
	if errors.Is(err, unix.ENOENT) {
		// Not the file it was: fd was closed and its number reused
		// since (a set kept between waits, see Trim).
		err = s.ctl(unix.EPOLL_CTL_ADD, fd, events)
	}
	if err != nil {
		return err
	}
	s.interest[i].events = events
	return nil
}

// Len returns how many descriptors AddConn and AddWriteConn added.
func (s *Set) Len() int { return len(s.interest) }

// Trim stops watching the descriptors AddConn and AddWriteConn added
// after the first n, for the set to be used again with others. It returns
// false if one could not be removed (it was closed meanwhile): the set
// may then still report a file no one watches, and must not be reused.
func (s *Set) Trim(n int) bool {
	ok := true
	for _, in := range s.interest[n:] {
		ok = s.ctl(unix.EPOLL_CTL_DEL, in.fd, 0) == nil && ok
	}
	s.interest = s.interest[:n]
	return ok
}

// ctl adds fd to the epoll instance (op EPOLL_CTL_ADD), changes its
// events (EPOLL_CTL_MOD) or removes it (EPOLL_CTL_DEL, events unused);
// EEXIST is returned bare.
func (s *Set) ctl(op, fd int, events uint32) error {
	var err error
	s.ep.Control(func(epfd int) {
		ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
		err = unix.EpollCtl(epfd, op, fd, &ev)
	})
	switch err {
	case nil, unix.EEXIST:
		return err
	}
	return fmt.Errorf("epoll_ctl %d: %w", fd, err)
}

// Wait returns nil once at least one descriptor in the set is ready, or
// ctx.Err() when ctx ends first. Readiness is level-triggered: data left
// unread is reported again by the next Wait.
func (s *Set) Wait(ctx context.Context) error {
	return s.ep.Read(ctx, s.poll)
}

func (s *Set) pollOnce(epfd int) error {
	n, err := unix.EpollWait(epfd, s.events[:], 0)
	if err != nil {
		return err
	}
	if n == 0 {
		return unix.EAGAIN
	}
	return nil
}

// FD returns the epoll instance's own descriptor, readable while a
// descriptor in the set is, for a wait that nests this set in another.
func (s *Set) FD() *FD { return s.ep }

// Close releases the epoll instance.
func (s *Set) Close() error { return s.ep.Close() }
