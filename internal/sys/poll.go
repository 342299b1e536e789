//go:build linux

package sys

import (
	"golang.org/x/sys/unix"
)

// Poll is poll(2) retried while a signal interrupts it (EINTR): an
// interrupted poll says nothing about the descriptors, so it is never an
// answer. It returns the number of descriptors with events, their revents
// filled in, or the error of a poll that failed otherwise. A retried wait
// starts its timeout (milliseconds; 0: do not wait) again, so callers that
// wait use a short one or none.
func Poll(fds []unix.PollFd, timeout int) (int, error) {
	for {
		n, err := unix.Poll(fds, timeout)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// PollNow returns, without waiting, the events poll(2) reports for fd:
// those of events that are ready, and POLLHUP, POLLERR or POLLNVAL
// whatever events asks for. A poll interrupted by a signal is retried, so
// that no answer is ever made up: 0 means that nothing is ready. It
// allocates nothing.
func PollNow(fd int, events int16) (int16, error) {
	p := [1]unix.PollFd{{Fd: int32(fd), Events: events}}
	if _, err := Poll(p[:], 0); err != nil {
		return 0, err
	}
	return p[0].Revents, nil
}
