//go:build linux

package sys

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ipcchan/go/internal/ctest"
)

// Claim 14 (a dead lock holder is seen, a live one never taken for dead):
// a C program whose main thread has called pthread_exit while another
// thread goes on is alive — its other thread can hold a ring's write lock
// and be writing — although /proc/PID/stat shows its leader as a zombie
// (Z). ProcessRunning, by either path, says it runs; once its last thread
// has exited (a zombie, not reaped yet), it says it does not.
func TestReviewProcessRunningLeaderExited(t *testing.T) {
	bin := ctest.Build(t, "leader-exits", `#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static void *run(void *arg) {
	char c;
	(void)arg;
	while (read(0, &c, 1) > 0) {}
	return 0;
}
int main(void) {
	pthread_t t;
	pthread_create(&t, 0, run, 0);
	printf("%d\n", getpid());
	fflush(stdout);
	pthread_exit(0);
}
`, "-pthread")
	cmd := exec.Command(bin)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	pid := cmd.Process.Pid
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || strings.TrimSpace(line) != strconv.Itoa(pid) {
		t.Fatalf("peer says %q, %v", line, err)
	}
	// The leader has exited once /proc shows it a zombie.
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the main thread did not exit")
		}
		time.Sleep(time.Millisecond)
	}
	if !ProcessRunning(pid) {
		t.Error("ProcessRunning says a process whose other thread runs is gone")
	}
	if !runningByStat(pid) {
		t.Error("runningByStat (the path without pidfds) says a process whose other thread runs is gone: a lock it holds would be stolen while it writes")
	}
	stdin.Close() // the last thread exits
	var info [128]byte
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, 1 /* P_PID */, uintptr(pid), uintptr(unsafe.Pointer(&info)), syscall.WEXITED|0x01000000 /* WNOWAIT */, 0, 0)
		if errno == 0 {
			break
		}
		if errno != syscall.EINTR || time.Now().After(deadline) {
			t.Fatalf("waitid: %v", errno)
		}
	}
	if ProcessRunning(pid) || runningByStat(pid) {
		t.Errorf("a process that has exited (not reaped) reported running: pidfd %v, stat %v", ProcessRunning(pid), runningByStat(pid))
	}
}
