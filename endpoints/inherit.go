package endpoints

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var inherited struct {
	sync.Mutex
	claimed map[string]bool
}

// use says what an inherited descriptor is wanted for.
type use int

const (
	useRead  use = iota // a Receiver: a pipe or FIFO read end, or a stream socket
	useWrite            // a Sender: a pipe or FIFO write end, or a stream socket
	useConn             // a Conn: a stream socket
	useEvent            // an Event: its shared memory
)

// claimInherited finds the descriptor handed down under name, checks that it
// is open and usable as wanted (see inspectFD), marks it close-on-exec and
// claimed, and returns it with a description and what it is.
func claimInherited(name string, want use) (fd int, desc string, info fdInfo, err error) {
	fail := func(format string, args ...any) (int, string, fdInfo, error) {
		return -1, "", fdInfo{}, fmt.Errorf("ipcchan: inherit %q: %w: %s", name, ErrNotInherited, fmt.Sprintf(format, args...))
	}
	v, ok := os.LookupEnv(EnvFiles)
	if !ok {
		return fail("%s is not set: this process was not started with endpoints.Start or Attach", EnvFiles)
	}
	entries, err := parseEntries(v)
	if err != nil {
		return fail("%s=%q: %v", EnvFiles, v, err)
	}
	val, ok := entries[name]
	if ok && strings.HasPrefix(val, sysvEntryPrefix) {
		return fail("it is a SysV message queue: take it with InheritSender or InheritReceiver")
	}
	fd, bells, _ := parseFDs(val)
	if !ok {
		names := make([]string, 0, len(entries))
		for n := range entries {
			names = append(names, n)
		}
		slices.Sort(names)
		return fail("not among the handed-down endpoints %v", names)
	}

	inherited.Lock()
	defer inherited.Unlock()
	if inherited.claimed[name] {
		return fail("already inherited by this process")
	}
	info, err = inspectFD(fd)
	if err != nil {
		return fail("%v", err)
	}
	if why := info.check(want); why != "" {
		return fail("descriptor %d %s", fd, why)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fail("descriptor %d: %v", fd, err)
	}
	if len(bells) > 0 {
		// A ring's doorbells: registered for the end made next, which
		// drops this reference (info.dropBells).
		if info.class != classRing {
			return fail("descriptor %d comes with doorbells but is not a ring", fd)
		}
		for _, b := range bells {
			if !isEventFD(b) {
				return fail("doorbell %d is not an eventfd", b)
			}
			unix.FcntlInt(uintptr(b), unix.F_SETFD, unix.FD_CLOEXEC)
		}
		key, err := bellKeyOfFD(fd)
		if err != nil {
			return fail("descriptor %d: %v", fd, err)
		}
		holdBells(key, bells[0], bells[1])
		info.bells = &key
	}
	if inherited.claimed == nil {
		inherited.claimed = map[string]bool{}
	}
	inherited.claimed[name] = true
	return fd, info.describe(fmt.Sprintf("inherited %q", name), want), info, nil
}

// isEventFD reports whether fd is an eventfd.
func isEventFD(fd int) bool {
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	return err == nil && link == "anon_inode:[eventfd]"
}

// dropBells lets go of the doorbells claimInherited registered, once the
// end is made (or failed).
func (i fdInfo) dropBells() {
	if i.bells != nil {
		dropBells(*i.bells)
	}
}
