package ipcchantest

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// SignalStorm sends this process rounds rounds of signals (until stop is
// closed, if sooner; rounds <= 0: until then) that every Go program tolerates, the way a busy program gets them: SIGURG (the
// runtime's own preemption signal) to each of its threads, and SIGWINCH
// and SIGCHLD (which the runtime ignores unless asked to deliver them) to
// the process. A signal makes a system call its thread is blocked in, or
// about to finish, fail with EINTR where it is not restarted (poll,
// epoll_wait, System V queue and semaphore waits, ...). It returns how many
// signals it sent.
//
// SignalStorm is safe for concurrent use; call it from a goroutine to
// storm while something else waits.
func SignalStorm(rounds int, stop <-chan struct{}) int {
	pid := unix.Getpid()
	sent := 0
	var tids []int
	for r := 0; rounds <= 0 || r < rounds; r++ {
		select {
		case <-stop:
			return sent
		default:
		}
		if r%16 == 0 {
			tids = threads(tids[:0]) // threads start as the program runs
		}
		for _, tid := range tids {
			if unix.Tgkill(pid, tid, unix.SIGURG) == nil {
				sent++
			}
		}
		for _, sig := range []unix.Signal{unix.SIGWINCH, unix.SIGCHLD} {
			if unix.Kill(pid, sig) == nil {
				sent++
			}
		}
	}
	return sent
}

// threads appends the ids of this process's threads to tids.
func threads(tids []int) []int {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return tids
	}
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids
}
