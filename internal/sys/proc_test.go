//go:build linux

package sys

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// A child that has exited but is not reaped yet is a zombie: kill(pid, 0)
// still succeeds, and ProcessRunning says it is gone, by either path.
func TestProcessRunningZombie(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a child: %v", err)
	}
	pid := cmd.Process.Pid
	defer cmd.Wait()
	if !ProcessRunning(pid) || !runningByStat(pid) {
		t.Fatal("a running child reported gone")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Wait for the exit without reaping: WNOWAIT leaves the zombie.
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
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("kill(zombie, 0) = %v: the test assumes it still succeeds", err)
	}
	if ProcessRunning(pid) {
		t.Error("ProcessRunning says a zombie runs")
	}
	if runningByStat(pid) {
		t.Error("runningByStat says a zombie runs")
	}
}

func TestProcessRunningSelfAndNone(t *testing.T) {
	if !ProcessRunning(os.Getpid()) {
		t.Error("this process reported gone")
	}
	if ProcessRunning(0) || ProcessRunning(-1) {
		t.Error("pid 0 or -1 reported running")
	}
	// The highest pid the kernel can hand out, plus one: never a process.
	if ProcessRunning(1<<22 + 1) {
		t.Error("an impossible pid reported running")
	}
}
