package proc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/proc"
)

// poolUnderFDBudget starts a ring pool of one worker with fewer and fewer
// descriptors to spare, in this (child) process: each Start either fails
// with an error or gives a pool that sees its worker die. A pool whose
// watch of the worker could not be set up (its pidfd found no descriptor)
// used to start anyway and wait for ever on the dead worker's jobs.
func poolUnderFDBudget() error {
	// The runtime's poller must be up before descriptors run short: it
	// cannot start without one.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	defer syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	ctx := context.Background()
	started := 0
	for spare := 0; spare < 60 && started < 3; spare++ {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return err
		}
		low := syscall.Rlimit{Cur: uint64(len(ents) + spare), Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			return err
		}
		p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 1, Transport: proc.Rings, Command: workerCmd("sleep", nil)})
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		if err != nil {
			continue // refused: fine, as long as it says so
		}
		started++
		if err := p.Submit(ctx, 60_000); err != nil {
			p.Close()
			return fmt.Errorf("%d spare descriptors: Submit: %w", spare, err)
		}
		pids := p.PIDs()
		if len(pids) != 1 {
			return fmt.Errorf("%d spare descriptors: %d workers", spare, len(pids))
		}
		syscall.Kill(pids[0], syscall.SIGKILL)
		select {
		case r := <-p.Results():
			var we *proc.WorkerError
			if !errors.As(r.Err, &we) {
				return fmt.Errorf("%d spare descriptors: the killed worker's job: %v, want a *WorkerError", spare, r.Err)
			}
		case <-time.After(20 * time.Second):
			return fmt.Errorf("%d spare descriptors: the pool started, but never saw its worker die", spare)
		}
		p.Close()
	}
	if started == 0 {
		return errors.New("no pool started with up to 60 spare descriptors")
	}
	return nil
}

// Run poolUnderFDBudget in a process of its own (it lowers the process's
// descriptor limit).
func TestPoolWatchFailureIsAnError(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IPCCHAN_TEST_ROLE=fd-budget")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
