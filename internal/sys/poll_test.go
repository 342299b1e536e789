//go:build linux

package sys

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func pipe(t *testing.T) (r, w int) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]) })
	return p[0], p[1]
}

// PollNow reports what the kernel says: nothing, data, a hang-up, both.
func TestPollNow(t *testing.T) {
	r, w := pipe(t)
	defer unix.Close(w)
	check := func(what string, want int16) {
		t.Helper()
		if ev, err := PollNow(r, unix.POLLIN); err != nil || ev != want {
			t.Fatalf("%s: PollNow = %#x, %v; want %#x", what, ev, err, want)
		}
	}
	check("empty pipe", 0)
	unix.Write(w, []byte("x"))
	check("data queued", unix.POLLIN)
	unix.Close(w)
	check("data queued, writer gone", unix.POLLIN|unix.POLLHUP)
	var buf [1]byte
	unix.Read(r, buf[:])
	check("writer gone", unix.POLLHUP)
	if _, err := PollNow(-1, unix.POLLIN); err != nil {
		t.Fatalf("PollNow(-1) = %v; poll ignores negative descriptors", err)
	}
	if raceEnabled {
		return // the race detector adds allocations of its own
	}
	if allocs := testing.AllocsPerRun(100, func() { PollNow(r, unix.POLLIN) }); allocs != 0 {
		t.Fatalf("PollNow allocates %v times", allocs)
	}
}

// A poll that waits is woken by every signal its thread gets (EINTR: poll
// is never restarted, whatever SA_RESTART says): Poll retries it and
// returns the readiness that finally came. (poll(2) without waiting fails
// the same way when a signal arrives during the call, which is what
// PollNow's callers met.)
func TestPollRetriesEINTR(t *testing.T) {
	r, w := pipe(t)
	defer unix.Close(w)
	const signals = 200
	tids := make(chan int, 1)
	type result struct {
		n   int
		ev  int16
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tids <- unix.Gettid()
		fds := []unix.PollFd{{Fd: int32(r), Events: unix.POLLIN}}
		n, err := Poll(fds, -1)
		done <- result{n, fds[0].Revents, err}
	}()
	tid, pid := <-tids, unix.Getpid()
	for range signals {
		// Each signal lands while the thread sleeps in poll: a storm
		// faster than the thread handles it would keep it out of the
		// kernel.
		if !waitSleeping(tid, done) {
			break // Poll returned: the check below reports it
		}
		if err := unix.Tgkill(pid, tid, unix.SIGURG); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case res := <-done:
		t.Fatalf("Poll returned %d, %#x, %v before anything was ready", res.n, res.ev, res.err)
	default:
	}
	unix.Write(w, []byte("x"))
	select {
	case res := <-done:
		if res.n != 1 || res.ev != unix.POLLIN || res.err != nil {
			t.Fatalf("Poll = %d, %#x, %v; want 1, POLLIN, nil", res.n, res.ev, res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Poll did not return when data came")
	}
}

// waitSleeping waits until thread tid sleeps in the kernel (state S in
// /proc), or until done has a value, and reports whether it sleeps.
func waitSleeping[T any](tid int, done chan T) bool {
	stat := fmt.Sprintf("/proc/self/task/%d/stat", tid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if len(done) > 0 {
			return false
		}
		b, err := os.ReadFile(stat)
		if err != nil {
			return false
		}
		// The state follows the command name, which ends with ") ".
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'S' {
			return true
		}
		runtime.Gosched()
	}
	return false
}
