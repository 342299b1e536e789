package endpoints

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

var inherited struct {
	sync.Mutex
	claimed map[string]bool
}

// mqueueType is what claimInherited reports as the socket type of a POSIX
// message queue descriptor.
const mqueueType = -1

// ringType is what claimInherited reports for a shared-memory ring.
const ringType = -2

// mqueueMagic is the file system type of POSIX message queues.
const mqueueMagic = 0x19800202

// checkAccess says what is wrong with a descriptor's access mode for want.
func checkAccess(flags int, want use) string {
	acc := flags & unix.O_ACCMODE
	if want == useWrite && acc == unix.O_RDONLY {
		return "is open for reading only; the parent passed a Receiver"
	}
	if want == useRead && acc == unix.O_WRONLY {
		return "is open for writing only; the parent passed a Sender"
	}
	return ""
}

// use says what an inherited descriptor is wanted for.
type use int

const (
	useRead  use = iota // a Receiver: a pipe or FIFO read end, or a stream socket
	useWrite            // a Sender: a pipe or FIFO write end, or a stream socket
	useConn             // a Conn: a stream socket
)

// claimInherited finds the descriptor handed down under name, checks that it
// is an open pipe, FIFO or stream socket usable as wanted, marks it
// close-on-exec and claimed, and returns it with a description and kind.
// sockType is the socket's SO_TYPE, or 0 for a pipe or FIFO.
func claimInherited(name string, want use) (fd int, desc string, sockType int, err error) {
	fail := func(format string, args ...any) (int, string, int, error) {
		return -1, "", 0, fmt.Errorf("ipcchan: inherit %q: %w: %s", name, ErrNotInherited, fmt.Sprintf(format, args...))
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
	fd, _ = strconv.Atoi(val)
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
	kind := "fifo"
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFSOCK:
		kind = "socket"
		if sockType, err = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE); err != nil {
			return fail("descriptor %d: %v", fd, err)
		}
		if sockType == unix.SOCK_DGRAM && want == useConn {
			return fail("descriptor %d is a datagram socket, not a connection; the parent passed a Sender or Receiver", fd)
		}
	case unix.S_IFIFO:
		if want == useConn {
			return fail("descriptor %d is a pipe or FIFO, not a socket; the parent passed a Sender or Receiver", fd)
		}
		if err := checkAccess(flags, want); err != "" {
			return fail("descriptor %d %s", fd, err)
		}
	default:
		if isRingFile(fd) {
			kind, sockType = "ring", ringType
			if want == useConn {
				return fail("descriptor %d is a shared-memory ring, not a socket; the parent passed a Sender or Receiver", fd)
			}
			break
		}
		if !isMQueue(fd) {
			return fail("descriptor %d is a %s, not a pipe, FIFO, socket or message queue", fd, fileType(st.Mode))
		}
		kind, sockType = "mqueue", mqueueType
		if want == useConn {
			return fail("descriptor %d is a message queue, not a socket; the parent passed a Sender or Receiver", fd)
		}
		if err := checkAccess(flags, want); err != "" {
			return fail("descriptor %d %s", fd, err)
		}
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fail("descriptor %d: %v", fd, err)
	}
	if inherited.claimed == nil {
		inherited.claimed = map[string]bool{}
	}
	inherited.claimed[name] = true
	what := map[use]string{useRead: "read end", useWrite: "write end", useConn: "connection"}[want]
	return fd, fmt.Sprintf("inherited %q (%s:[%d] %s)", name, kind, st.Ino, what), sockType, nil
}
