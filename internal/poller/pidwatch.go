package poller

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
)

// Process watching: one goroutine per process, however many processes and
// endpoints are watched, parked on an epoll set of pidfds (readable once
// their process has exited). It starts with the first watch and ends with
// the last, so an idle program runs nothing.
var pids struct {
	mu      sync.Mutex
	watches map[int]*pidWatch // by pidfd
	set     *Set
	wake    *Event // set to make the goroutine recheck (a watch was removed)
}

type pidWatch struct {
	fd int
	f  func()
}

// WatchPID calls f, once, when the process pid
// exits (at once if it has already exited). f runs on the watching
// goroutine and must not block. stop ends the watch; after stop
// returns, f is not called unless it was already running. It returns the
// pidfd_open error for a process that does not exist (ESRCH).
//
// WatchPID is safe for concurrent use.
func WatchPID(pid int, f func()) (stop func(), err error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, sys.DescriptorLimit(err))
	}
	unix.CloseOnExec(fd)
	pids.mu.Lock()
	defer pids.mu.Unlock()
	if pids.set == nil {
		if err := startPIDWatcher(); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	w := &pidWatch{fd: fd, f: f}
	if err := pids.set.AddFD(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	pids.watches[fd] = w
	return func() { removeWatch(w) }, nil
}

func removeWatch(w *pidWatch) {
	pids.mu.Lock()
	defer pids.mu.Unlock()
	if pids.watches[w.fd] != w {
		return // fired or stopped already
	}
	delete(pids.watches, w.fd)
	unix.Close(w.fd) // which removes it from the epoll set
	if len(pids.watches) == 0 {
		pids.wake.Set()
	}
}

// startPIDWatcher makes the set and starts its goroutine; pids.mu is held.
func startPIDWatcher() error {
	set, err := NewSet()
	if err != nil {
		return err
	}
	wake, err := NewEvent()
	if err != nil {
		set.Close()
		return err
	}
	if err := set.AddFD(wake.FD()); err != nil {
		set.Close()
		wake.Close()
		return err
	}
	pids.set, pids.wake, pids.watches = set, wake, make(map[int]*pidWatch)
	go watchPIDs(set, wake)
	return nil
}

func watchPIDs(set *Set, wake *Event) {
	var fds []unix.PollFd
	for {
		set.Wait(context.Background())
		pids.mu.Lock()
		wake.Clear()
		fds = fds[:0]
		for fd := range pids.watches {
			fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
		// Which pidfds are readable (poll fails with EINTR only when none
		// is, and sys.Poll retries it anyway). Poll of them all fails for
		// want of memory, or with EINVAL when there are more than
		// RLIMIT_NOFILE: then each is asked on its own.
		if _, err := sys.Poll(fds, 0); err != nil {
			for i := range fds {
				fds[i].Revents, _ = sys.PollNow(int(fds[i].Fd), unix.POLLIN)
			}
		}
		var fired []func()
		for _, p := range fds {
			if p.Revents == 0 {
				continue
			}
			w := pids.watches[int(p.Fd)]
			delete(pids.watches, w.fd)
			unix.Close(w.fd)
			fired = append(fired, w.f)
		}
		done := len(pids.watches) == 0
		if done {
			pids.set, pids.wake, pids.watches = nil, nil, nil
		}
		pids.mu.Unlock()
		for _, f := range fired {
			f()
		}
		if done {
			set.Close()
			wake.Close()
			return
		}
	}
}
