//go:build linux

package sys

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ProcessRunning reports whether the process pid exists and has not exited.
// A zombie — a process that has exited but that its parent has not reaped
// yet — has exited: kill(pid, 0) still finds it, so it is no test of
// whether a process can still act. A process of another user counts as
// running.
//
// It asks a pidfd, which becomes readable when its process exits, and falls
// back to the state in /proc/PID/stat where pidfds are missing.
func ProcessRunning(pid int) bool {
	if pid <= 0 {
		return false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	switch err {
	case nil:
		defer unix.Close(fd)
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(p, 0)
			if err == unix.EINTR {
				continue
			}
			return err == nil && n == 0
		}
	case unix.ESRCH:
		return false
	}
	return runningByStat(pid)
}

// runningByStat reads the state letter of /proc/PID/stat: Z (zombie) and X
// (dead) have exited; a missing entry means no such process. The letter is
// the thread group leader's: a process whose main thread has exited
// (pthread_exit) while others go on shows Z too, so a Z process with more
// than one thread (/proc/PID/status) still runs.
func runningByStat(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !os.IsNotExist(err)
	}
	// The state follows the command name, which is in parentheses and may
	// itself hold parentheses and spaces: take the last ")".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	switch b[i+2] {
	case 'Z':
		return otherThreads(pid)
	case 'X', 'x':
		return false
	}
	return true
}

// otherThreads reports whether the process pid, whose leader has exited,
// has threads besides it.
func otherThreads(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("Threads:")); ok {
			n, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			return err == nil && n > 1
		}
	}
	return false
}
