package endpoints

import (
	"fmt"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

var inherited struct {
	sync.Mutex
	claimed map[string]bool
}

// claimInherited finds the descriptor handed down under name, checks that it
// is an open pipe or FIFO usable in the wanted direction, marks it
// close-on-exec and claimed, and returns it with a description.
func claimInherited(name string, write bool) (int, string, error) {
	fail := func(format string, args ...any) (int, string, error) {
		return -1, "", fmt.Errorf("ipcchan: inherit %q: %w: %s", name, ErrNotInherited, fmt.Sprintf(format, args...))
	}
	v, ok := os.LookupEnv(EnvFiles)
	if !ok {
		return fail("%s is not set: this process was not started with endpoints.Start or Attach", EnvFiles)
	}
	entries, err := parseEntries(v)
	if err != nil {
		return fail("%s=%q: %v", EnvFiles, v, err)
	}
	fd, ok := entries[name]
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
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fail("descriptor %d: %v", fd, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail("descriptor %d: %v", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fail("descriptor %d is a %s, not a pipe or FIFO", fd, fileType(st.Mode))
	}
	acc := flags & unix.O_ACCMODE
	if write && acc == unix.O_RDONLY {
		return fail("descriptor %d is open for reading only; the parent passed a Receiver", fd)
	}
	if !write && acc == unix.O_WRONLY {
		return fail("descriptor %d is open for writing only; the parent passed a Sender", fd)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fail("descriptor %d: %v", fd, err)
	}
	if inherited.claimed == nil {
		inherited.claimed = map[string]bool{}
	}
	inherited.claimed[name] = true
	end := "read end"
	if write {
		end = "write end"
	}
	return fd, fmt.Sprintf("inherited %q (fifo:[%d] %s)", name, st.Ino, end), nil
}
