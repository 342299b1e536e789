package proc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/proc"
)

// The test binary is its own worker: a pool started by a test re-executes
// it with IPCCHAN_TEST_MODE saying how to behave.
func TestMain(m *testing.M) {
	if proc.IsWorker() || os.Getenv("IPCCHAN_TEST_ROLE") != "" {
		if err := child(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func child() error {
	ctx := context.Background()
	switch os.Getenv("IPCCHAN_TEST_MODE") {
	case "square":
		return proc.Serve(ctx, func(_ context.Context, n int64) (int64, error) {
			if n < 0 {
				return 0, errors.New("negative")
			}
			return n * n, nil
		})
	case "crash-once":
		// Dies on job 13 the first time anyone sees it.
		marker := os.Getenv("IPCCHAN_TEST_MARKER")
		return proc.Serve(ctx, func(_ context.Context, n int64) (int64, error) {
			if n == 13 {
				if f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL, 0o600); err == nil {
					f.Close()
					os.Exit(3)
				}
			}
			return n * n, nil
		})
	case "echo-Tiny":
		return proc.Serve(ctx, func(_ context.Context, t Tiny) (Tiny, error) { return t, nil })
	case "exit-at-once":
		os.Exit(5) // before any handshake
	case "strings":
		return proc.Serve(ctx, func(_ context.Context, s string) (string, error) { return s, nil })
	case "args":
		return proc.Serve(ctx, func(context.Context, int64) (string, error) {
			return fmt.Sprintf("%q %s %s %s", os.Args[1:], os.Getenv("PROC_TEST_OVERRIDE"), os.Getenv("PROC_TEST_NEW"), os.Getenv(proc.EnvWorker)), nil
		})
	case "sleep":
		return proc.Serve(ctx, func(ctx context.Context, n int64) (int64, error) {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(n) * time.Millisecond):
			}
			return n, nil
		})
	}
	if role := os.Getenv("IPCCHAN_TEST_ROLE"); role == "gob-worker" || role == "rpc-worker" {
		return benchChild(role)
	}
	if os.Getenv("IPCCHAN_TEST_ROLE") == "stage" {
		err := stage(os.Getenv("IPCCHAN_TEST_STAGE"))
		if errors.Is(err, ipcchan.ErrPeerGone) {
			return nil // a neighbour's failure, which it reports itself
		}
		return err
	}
	switch os.Getenv("IPCCHAN_TEST_ROLE") {
	case "fd-budget":
		return poolUnderFDBudget()
	case "pool-ctrl-c":
		return poolUnderCtrlC()
	case "pipeline-ctrl-c":
		return pipelineUnderCtrlC()
	}
	if os.Getenv("IPCCHAN_TEST_ROLE") == "pool-owner" {
		// Starts two sleeping workers, reports their pids, and waits to
		// be killed.
		p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 2, Command: workerCmd("sleep", nil)})
		if err != nil {
			return err
		}
		for range 2 {
			p.Submit(ctx, 60_000)
		}
		for _, pid := range p.PIDs() {
			fmt.Println(pid)
		}
		for { // until killed (not select {}: a deadlock exit without cgo or on 386)
			time.Sleep(time.Hour)
		}
	}
	return fmt.Errorf("unknown mode %q", os.Getenv("IPCCHAN_TEST_MODE"))
}

func workerCmd(mode string, env []string) func(int) *exec.Cmd {
	return func(int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(append(os.Environ(), "IPCCHAN_TEST_MODE="+mode), env...)
		cmd.Stderr = os.Stderr
		return cmd
	}
}

// 10,000 jobs through 4 workers: every result arrives exactly once, right.
func TestPoolEveryJobOnce(t *testing.T) {
	for _, tr := range []struct {
		name string
		t    proc.Transport
	}{{"pipes", proc.Pipes}, {"rings", proc.Rings}} {
		t.Run(tr.name, func(t *testing.T) {
			ctx := context.Background()
			p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 4, Command: workerCmd("square", nil), Transport: tr.t})
			if err != nil {
				t.Fatal(err)
			}
			const n = 10_000
			go func() {
				for i := range int64(n) {
					if err := p.Submit(ctx, i); err != nil {
						t.Error(err)
						break
					}
				}
				p.Close()
			}()
			seen := make([]int, n)
			perWorker := map[int]int{}
			for r := range p.Results() {
				if r.Err != nil || r.Value != r.Job*r.Job {
					t.Fatalf("job %d: %d, %v", r.Job, r.Value, r.Err)
				}
				seen[r.Job]++
				perWorker[r.Worker]++
			}
			for i, c := range seen {
				if c != 1 {
					t.Fatalf("job %d answered %d times", i, c)
				}
			}
			if len(perWorker) != 4 {
				t.Errorf("jobs went to %d workers, want 4: %v", len(perWorker), perWorker)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A handler's error comes back as the job's error; other jobs go on.
func TestPoolJobError(t *testing.T) {
	ctx := context.Background()
	p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 2, Command: workerCmd("square", nil)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { p.Submit(ctx, -1); p.Submit(ctx, 3); p.Close() }()
	var jobErr *proc.JobError
	got := map[int64]bool{}
	for r := range p.Results() {
		got[r.Job] = true
		if r.Job == -1 && (!errors.As(r.Err, &jobErr) || jobErr.Msg != "negative") {
			t.Errorf("job -1: %v", r.Err)
		}
		if r.Job == 3 && (r.Err != nil || r.Value != 9) {
			t.Errorf("job 3: %d, %v", r.Value, r.Err)
		}
	}
	if len(got) != 2 {
		t.Fatalf("results for %v", got)
	}
}

// A worker that crashes mid-job is reported with its exit status; with
// Restart and Retries the job is done by another worker and nothing is
// lost.
func TestPoolWorkerCrash(t *testing.T) {
	run := func(t *testing.T, opts proc.Options) map[int64]proc.Result[int64, int64] {
		marker := filepath.Join(t.TempDir(), "crashed")
		opts.Command = workerCmd("crash-once", []string{"IPCCHAN_TEST_MARKER=" + marker})
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
			if _, dup := got[r.Job]; dup {
				t.Fatalf("job %d answered twice", r.Job)
			}
			got[r.Job] = r
		}
		return got
	}
	t.Run("reported", func(t *testing.T) {
		got := run(t, proc.Options{Workers: 2})
		r := got[13]
		var we *proc.WorkerError
		if !errors.As(r.Err, &we) || !errors.Is(r.Err, ipcchan.ErrPeerGone) || !strings.Contains(we.Status, "exit status 3") {
			t.Fatalf("job 13: %v, want a WorkerError with exit status 3", r.Err)
		}
		t.Log(r.Err)
	})
	t.Run("restarted-and-retried", func(t *testing.T) {
		got := run(t, proc.Options{Workers: 2, Restart: true, Retries: 1})
		if len(got) != 100 {
			t.Fatalf("%d results, want 100", len(got))
		}
		for i, r := range got {
			if r.Err != nil || r.Value != i*i {
				t.Fatalf("job %d: %d, %v", i, r.Value, r.Err)
			}
		}
	})
}

// Cancelling the pool's context stops dispatch, drains and closes Results.
func TestPoolCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 2, Command: workerCmd("sleep", nil)})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := p.Submit(ctx, 20); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	n := 0
	for range p.Results() {
		n++
	}
	if n != 4 {
		t.Fatalf("%d results after the cancel, want the 4 jobs held", n)
	}
	if err := p.Submit(context.Background(), 1); !errors.Is(err, os.ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit after cancel: %v, want os.ErrClosed and context.Canceled", err)
	}
}

// A worker built for another job type is refused by the handshake: the
// jobs are reported failed instead of decoded as garbage.
func TestPoolMismatchedWorker(t *testing.T) {
	ctx := context.Background()
	p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 1, Command: workerCmd("strings", nil)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { p.Submit(ctx, 7); p.Close() }()
	for r := range p.Results() {
		if !errors.Is(r.Err, ipcchan.ErrPeerGone) {
			t.Fatalf("job on a mismatched worker: %d, %v", r.Value, r.Err)
		}
	}
	if err := p.Close(); err == nil {
		t.Fatal("Close reports no failed worker")
	}
}

// Workers die with the pool's process, even when it is killed.
func TestPoolWorkersDieWithParent(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IPCCHAN_TEST_ROLE=pool-owner")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for range 2 {
		var pid int
		if _, err := fmt.Fscan(out, &pid); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d outlived its killed parent", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// A worker that exits before the handshake is reported, not waited for;
// Serve outside a pool says so.
func TestPoolBadWorkers(t *testing.T) {
	ctx := context.Background()
	p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 1, Command: workerCmd("exit-at-once", nil)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { p.Submit(ctx, 1); p.Close() }()
	for r := range p.Results() {
		var we *proc.WorkerError
		if !errors.As(r.Err, &we) && !errors.Is(r.Err, ipcchan.ErrPeerGone) {
			t.Fatalf("a job for a worker that exited: %v", r.Err)
		}
	}
	var we *proc.WorkerError
	if err := p.Close(); !errors.As(err, &we) || !strings.Contains(we.Status, "exit status 5") {
		t.Fatalf("Close = %v, want the worker's exit status 5", err)
	}
	if err := proc.Serve(ctx, func(context.Context, int) (int, error) { return 0, nil }); !errors.Is(err, proc.ErrNotWorker) {
		t.Fatalf("Serve outside a pool: %v", err)
	}
}

// Submit with a context that has ended refuses the job with the
// context's error, even with a slot free, and submits nothing.
func TestPoolSubmitEndedContext(t *testing.T) {
	p, err := proc.Start[int64, int64](context.Background(), proc.Options{Workers: 1, Command: workerCmd("square", nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 20 {
		if err := p.Submit(ctx, 2); !errors.Is(err, context.Canceled) {
			t.Fatalf("Submit %d with an ended context: %v, want context.Canceled", i, err)
		}
	}
	if st := p.Stats(); st.Submitted != 0 {
		t.Errorf("%d jobs submitted with an ended context", st.Submitted)
	}
	go p.Close()
	for r := range p.Results() {
		t.Errorf("a result for job %d", r.Job)
	}
}
