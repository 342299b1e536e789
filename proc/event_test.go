package proc_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/proc"
)

// runCrashOnce runs 100 jobs through two workers of which the one that
// first gets job 13 dies of it (exit status 3), and returns the events,
// the results and the final stats.
func runCrashOnce(t *testing.T, opts proc.Options) ([]proc.Event, map[int64]proc.Result[int64, int64], proc.Stats) {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "crashed")
	opts.Workers = 2
	opts.Command = workerCmd("crash-once", []string{"IPCCHAN_TEST_MARKER=" + marker})
	var events []proc.Event // OnEvent is never called concurrently
	opts.OnEvent = func(e proc.Event) { events = append(events, e) }
	ctx := context.Background()
	p, err := proc.Start[int64, int64](ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for i := range int64(100) {
			if p.Submit(ctx, i) != nil {
				break
			}
		}
		p.Close()
	}()
	got := map[int64]proc.Result[int64, int64]{}
	for r := range p.Results() {
		got[r.Job] = r
	}
	p.Close()
	return events, got, p.Stats() // no event after Results is closed
}

// ofKind returns the events of kind k.
func ofKind(events []proc.Event, k proc.EventKind) []proc.Event {
	var es []proc.Event
	for _, e := range events {
		if e.Kind == k {
			es = append(es, e)
		}
	}
	return es
}

// Restarts, deaths with their exit status, and retries are told to
// OnEvent and counted by Stats; the pool's behaviour is the same as
// without them.
func TestPoolEventsAndStats(t *testing.T) {
	t.Run("restarted-and-retried", func(t *testing.T) {
		events, got, st := runCrashOnce(t, proc.Options{Restart: true, Retries: 1})
		defer func() {
			if t.Failed() {
				for _, e := range events {
					t.Log(e)
				}
			}
		}()
		if len(got) != 100 || got[13].Err != nil {
			t.Fatalf("%d results, job 13: %v", len(got), got[13].Err)
		}
		started, exited := ofKind(events, proc.EventStarted), ofKind(events, proc.EventExited)
		restarted, retried := ofKind(events, proc.EventRestarted), ofKind(events, proc.EventRetried)
		if len(started) != 2 || len(restarted) != 1 || len(exited) != 3 || len(retried) == 0 {
			t.Fatalf("%d started, %d restarted, %d exited, %d retried; want 2, 1, 3, some", len(started), len(restarted), len(exited), len(retried))
		}
		// The dead worker's own events, in order: started, exited with
		// status 3, the jobs it held retried (13 among them), its
		// replacement started, which exits cleanly at Close.
		dead := retried[0].Worker
		var mine []proc.Event
		var kinds []proc.EventKind
		has13 := false
		for _, e := range events {
			if e.Worker != dead {
				continue
			}
			if e.Kind == proc.EventRetried {
				has13 = has13 || e.Job == int64(13)
				var we *proc.WorkerError
				if e.Attempt != 1 || !errors.As(e.Err, &we) || e.PID != mine[0].PID {
					t.Errorf("a retry: %+v, want attempt 1 and the dead worker's error", e)
				}
				if mine[len(mine)-1].Kind == proc.EventRetried {
					continue // one entry in kinds for them all
				}
			}
			mine = append(mine, e)
			kinds = append(kinds, e.Kind)
		}
		want := []proc.EventKind{proc.EventStarted, proc.EventExited, proc.EventRetried, proc.EventRestarted, proc.EventExited}
		if !slices.Equal(kinds, want) || !has13 {
			t.Fatalf("worker %d's events %v (job 13 retried: %v), want %v", dead, kinds, has13, want)
		}
		crash := mine[1]
		var we *proc.WorkerError
		if crash.ExitCode != 3 || crash.Signal != 0 || !errors.As(crash.Err, &we) || we.ExitCode != 3 || crash.PID != mine[0].PID {
			t.Errorf("the crash: %+v, want exit status 3 of pid %d with a *WorkerError", crash, mine[0].PID)
		}
		if r := mine[3]; r.PID == mine[0].PID || r.PID <= 0 {
			t.Errorf("the replacement's pid %d (the dead one's %d)", r.PID, mine[0].PID)
		}
		if e := mine[4]; e.ExitCode != 0 || e.Err != nil || e.PID != mine[3].PID {
			t.Errorf("the replacement's exit at Close: %+v, want a clean exit of pid %d", e, mine[3].PID)
		}
		want2 := proc.Stats{Started: 3, Restarted: 1, Exited: 3, Died: 1, Retried: len(retried), Submitted: 100, Done: 100}
		if st != want2 {
			t.Errorf("Stats = %+v, want %+v", st, want2)
		}
	})
	t.Run("reported", func(t *testing.T) {
		events, got, st := runCrashOnce(t, proc.Options{})
		var we *proc.WorkerError
		if !errors.As(got[13].Err, &we) || we.ExitCode != 3 || we.Signal != 0 {
			t.Fatalf("job 13: %v, want a *WorkerError with exit status 3", got[13].Err)
		}
		if n := len(ofKind(events, proc.EventRestarted)) + len(ofKind(events, proc.EventRetried)); n != 0 {
			t.Errorf("%d restarts and retries without Restart and Retries", n)
		}
		if st.Died != 1 || st.Restarted != 0 || st.Retried != 0 || st.Failed < 1 || st.Done+st.Failed != st.Submitted || st.InFlight != 0 {
			t.Errorf("Stats = %+v", st)
		}
	})
	t.Run("killed", func(t *testing.T) {
		exits := make(chan proc.Event, 4)
		ctx := context.Background()
		p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 1, Command: workerCmd("sleep", nil), Restart: true,
			OnEvent: func(e proc.Event) {
				if e.Kind == proc.EventExited {
					exits <- e
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Submit(ctx, 60_000); err != nil {
			t.Fatal(err)
		}
		pid := p.PIDs()[0]
		syscall.Kill(pid, syscall.SIGKILL)
		var e proc.Event
		select {
		case e = <-exits:
		case <-time.After(20 * time.Second):
			t.Fatal("no event for the killed worker")
		}
		var we *proc.WorkerError
		if e.PID != pid || e.Signal != syscall.SIGKILL || e.ExitCode != -1 || !errors.As(e.Err, &we) || we.Signal != syscall.SIGKILL {
			t.Errorf("the killed worker's event: %+v (%v)", e, e)
		}
		if r := <-p.Results(); !errors.As(r.Err, &we) {
			t.Errorf("its job: %v", r.Err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if st := p.Stats(); st.Died != 1 || st.Restarted != 1 || st.Started != 2 || st.Exited != 2 || st.Workers != 0 {
			t.Errorf("Stats = %+v", st)
		}
	})
}

// Stats and the events are safe under many goroutines submitting and
// asking at once; Submitted is always Done + Failed + InFlight.
func TestPoolStatsConcurrent(t *testing.T) {
	ctx := context.Background()
	var p *proc.Pool[int64, int64]
	ready := make(chan struct{})
	p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 3, Command: workerCmd("square", nil),
		OnEvent: func(proc.Event) {
			select {
			case <-ready:
				p.Stats() // allowed from OnEvent
			default:
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	close(ready)
	const submitters, perSubmitter = 8, 300
	var submit, watch sync.WaitGroup
	for range submitters {
		submit.Go(func() {
			for i := range int64(perSubmitter) {
				if err := p.Submit(ctx, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	stop := make(chan struct{})
	for range 8 {
		watch.Go(func() {
			last := 0
			for {
				st := p.Stats()
				if st.Submitted != st.Done+st.Failed+st.InFlight || st.Done < last || st.InFlight < 0 {
					t.Errorf("Stats = %+v (Done was %d)", st, last)
					return
				}
				last = st.Done
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	go func() { submit.Wait(); p.Close() }()
	n := 0
	for r := range p.Results() {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		n++
	}
	close(stop)
	watch.Wait()
	if st := p.Stats(); n != submitters*perSubmitter || st.Submitted != n || st.Done != n || st.InFlight != 0 || st.Workers != 0 || st.Exited != 3 || st.Died != 0 {
		t.Fatalf("%d results, Stats = %+v", n, st)
	}
}

// The default command gives a worker exactly Options.Args, and Env on top
// of this process's environment; the pool's own variables win. Without
// Args it gets WorkerArg alone; Args with a Command is refused.
func TestPoolArgsAndEnv(t *testing.T) {
	t.Setenv("PROC_TEST_OVERRIDE", "parent")
	ask := func(t *testing.T, opts proc.Options) string {
		t.Helper()
		opts.Workers = 1
		opts.Env = append(opts.Env, "IPCCHAN_TEST_MODE=args", "PROC_TEST_OVERRIDE=worker", "PROC_TEST_NEW=new value", proc.EnvWorker+"=7")
		ctx := context.Background()
		p, err := proc.Start[int64, string](ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		go func() { p.Submit(ctx, 1); p.Close() }()
		var got string
		for r := range p.Results() {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			got = r.Value
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	args := []string{"-test.run=^$", "-greeting", "hello world", "positional"}
	if got, want := ask(t, proc.Options{Args: args}), fmt.Sprintf("%q worker new value 0", args); got != want {
		t.Errorf("with Args: the worker says %s, want %s", got, want)
	}
	if got, want := ask(t, proc.Options{}), fmt.Sprintf("%q worker new value 0", []string{proc.WorkerArg}); got != want {
		t.Errorf("without Args: the worker says %s, want %s", got, want)
	}
	_, err := proc.Start[int64, string](context.Background(), proc.Options{Args: args, Command: workerCmd("args", nil)})
	if err == nil || !strings.Contains(err.Error(), "Options.Command") {
		t.Errorf("Args with Command: %v, want an error saying where the arguments go", err)
	}
}

// Workers and stages are in a process group of their own, so that a
// terminal's SIGINT reaches only this process; ShareProcessGroup, or a
// stage's own Setpgid, keeps them in ours.
func TestProcessGroups(t *testing.T) {
	ours := syscall.Getpgrp()
	for _, share := range []bool{false, true} {
		ctx := context.Background()
		p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 2, Command: workerCmd("square", nil), ShareProcessGroup: share})
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range p.PIDs() {
			pgid, err := syscall.Getpgid(pid)
			if want := pid; err != nil || share && pgid != ours || !share && pgid != want {
				t.Errorf("ShareProcessGroup %v: worker %d in group %d (%v); ours is %d", share, pid, pgid, err, ours)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}

	shared := stageCmd("pass")
	shared.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: ours}
	stages := []*exec.Cmd{stageCmd("pass"), shared}
	checked := make(chan struct{})
	err := proc.Pipeline(context.Background(), stages,
		func(ctx context.Context, tx *ipcchan.Sender[int64]) error {
			<-checked // the stages wait for their input meanwhile
			return nil
		},
		func(ctx context.Context, rx *ipcchan.Receiver[int64]) error {
			defer close(checked)
			own := stages[0].Process.Pid
			if pgid, err := syscall.Getpgid(own); err != nil || pgid != own {
				t.Errorf("stage 0 (pid %d) in group %d (%v), want its own", own, pgid, err)
			}
			if pgid, err := syscall.Getpgid(stages[1].Process.Pid); err != nil || pgid != ours {
				t.Errorf("stage 1 with Pgid %d in group %d (%v)", ours, pgid, err)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
}

// A worker that cannot be replaced is told to OnEvent (it used to go
// unseen); the pool goes on without it.
func TestPoolRestartFailedEvent(t *testing.T) {
	var calls atomic.Int32
	failed := make(chan proc.Event, 1)
	ctx := context.Background()
	p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 1, Restart: true,
		Command: func(i int) *exec.Cmd {
			if calls.Add(1) == 1 {
				return workerCmd("sleep", nil)(i)
			}
			return exec.Command(filepath.Join(t.TempDir(), "no-such-program"))
		},
		OnEvent: func(e proc.Event) {
			if e.Kind == proc.EventRestartFailed {
				failed <- e
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Submit(ctx, 60_000); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(p.PIDs()[0], syscall.SIGKILL)
	select {
	case e := <-failed:
		if e.Worker != 0 || !errors.Is(e.Err, fs.ErrNotExist) {
			t.Errorf("the failed restart: %+v, want worker 0 and a missing program", e)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event for the failed restart")
	}
	<-p.Results()
	if err := p.Submit(ctx, 1); !errors.Is(err, ipcchan.ErrPeerGone) {
		t.Errorf("Submit with no worker left: %v", err)
	}
	p.Close()
	if st := p.Stats(); st.Started != 1 || st.Restarted != 0 || st.Died != 1 || st.Workers != 0 {
		t.Errorf("Stats = %+v", st)
	}
}
