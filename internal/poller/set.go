package poller

import (
	"context"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
)

// Set waits until any of several descriptors is readable, with one parked
// goroutine and no thread: the descriptors go into a private epoll instance
// whose own descriptor is watched by the runtime poller.
//
// Add and Wait must not be called concurrently; Close may be called once
// everything else is done.
type Set struct {
	ep     *FD
	events [8]unix.EpollEvent
	poll   func(int) error
}

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
func (s *Set) AddConn(rc syscall.RawConn) error {
	var addErr error
	err := rc.Control(func(fd uintptr) { addErr = s.AddFD(int(fd)) })
	if err != nil {
		return err
	}
	return addErr
}

// AddFD adds fd. The caller keeps fd open while it may be reported; closing
// it removes it from the set.
func (s *Set) AddFD(fd int) error {
	var err error
	s.ep.Control(func(epfd int) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev)
	})
	if err == unix.EEXIST {
		return nil
	}
	if err != nil {
		return fmt.Errorf("epoll_ctl add %d: %w", fd, err)
	}
	return nil
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
