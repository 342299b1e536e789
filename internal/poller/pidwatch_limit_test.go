package poller

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// watchOverLimit watches more processes than the descriptor limit, lowered
// after the watches were made, now allows: poll of all their pidfds then
// fails with EINVAL, and the watcher must still see a process exit (it
// used to ignore the error and see nothing, for ever).
func watchOverLimit() error {
	const n = 12
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	fired := make(chan int, n)
	for i := range n {
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
		if _, err := WatchPID(cmd.Process.Pid, func() { fired <- i }); err != nil {
			return err
		}
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	low := syscall.Rlimit{Cur: n / 2, Max: lim.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		return err
	}
	cmds[3].Process.Kill()
	select {
	case i := <-fired:
		if i != 3 {
			return errors.New("the wrong watch fired")
		}
	case <-time.After(10 * time.Second):
		return errors.New("a watched process exited unseen while the watches outnumber the descriptor limit")
	}
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	return nil
}

func TestWatchPIDOverDescriptorLimit(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "POLLER_TEST_CHILD=watch-over-limit")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
