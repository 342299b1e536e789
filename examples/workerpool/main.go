// Command workerpool is the main demo of ipcchan: a parent process fans
// typed jobs out to worker processes and collects typed results, with the
// pool of package proc.
//
//	go run ./examples/workerpool
//	go run ./examples/workerpool -workers 4 -jobs 100 -crash 7
//	go run ./examples/workerpool -jobs 100000     # long enough to press Ctrl-C
//
// The workers are this same program, re-executed with the parent's
// arguments (Options.Args), so they parse the same flags; the crash marker
// file reaches them in their environment (Options.Env). Jobs and results
// travel over pipes (or shared-memory rings with -rings), as fixed-size
// structs that the binary codec moves without reflection or allocation.
// With -crash N, the worker that gets job N first dies on the spot: the
// pool tells OnEvent (printed as "event: ..."), starts a new worker in its
// place and gives the jobs it held to another, so every job still gets
// exactly one result. Ctrl-C reaches only the parent (the workers are in
// process groups of their own): its context ends, dispatch stops, the
// workers finish the jobs they hold and exit, and the parent reports what
// finished — no job fails because of the key press.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ipcchan/go/proc"
)

// Job asks a worker for the sum of the squares 1² + ... + N².
type Job struct {
	ID int64
	N  int64
}

// Result is a worker's answer.
type Result struct {
	JobID  int64
	Worker int64
	PID    int64
	Sum    int64
}

var (
	workers = flag.Int("workers", 3, "worker processes")
	jobs    = flag.Int("jobs", 12, "jobs to hand out")
	crash   = flag.Int64("crash", -1, "the worker that first gets this job dies (workers see the flag too)")
	rings   = flag.Bool("rings", false, "carry jobs over shared-memory rings rather than pipes")
)

func main() {
	flag.Parse() // in the workers too: they get the same arguments
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if proc.IsWorker() {
		err = proc.Serve(ctx, work)
	} else {
		err = run(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "workerpool:", err)
		os.Exit(1)
	}
}

// work is a worker's handler for one job.
func work(_ context.Context, job Job) (Result, error) {
	if job.ID == *crash {
		// Only once: the marker file says it happened.
		if f, err := os.OpenFile(os.Getenv("CRASH_MARKER"), os.O_CREATE|os.O_EXCL, 0o600); err == nil {
			f.Close()
			fmt.Printf("worker %s (pid %d): crashing on job %d\n", os.Getenv(proc.EnvWorker), os.Getpid(), job.ID)
			os.Exit(3)
		}
	}
	worker, _ := strconv.ParseInt(os.Getenv(proc.EnvWorker), 10, 64)
	var sum int64
	for k := int64(1); k <= job.N; k++ {
		sum += k * k
	}
	return Result{JobID: job.ID, Worker: worker, PID: int64(os.Getpid()), Sum: sum}, nil
}

func run(ctx context.Context) error {
	start := time.Now()
	dir, err := os.MkdirTemp("", "workerpool-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts := proc.Options{
		Workers: *workers, Restart: true, Retries: 1,
		Args: os.Args[1:], // the workers parse the same flags (-crash)
		Env:  []string{"CRASH_MARKER=" + filepath.Join(dir, "crashed")},
		OnEvent: func(e proc.Event) { // from the pool's goroutines: print and return
			if e.Kind != proc.EventStarted && (e.Kind != proc.EventExited || e.Err != nil) {
				fmt.Println("event:", e)
			}
		},
	}
	if *rings {
		opts.Transport = proc.Rings
	}
	pool, err := proc.Start[Job, Result](ctx, opts)
	if err != nil {
		return err
	}
	fmt.Printf("started %d workers: pids %v\n", *workers, pool.PIDs())

	sent := 0
	go func() {
		for i := range *jobs {
			if err := pool.Submit(ctx, Job{ID: int64(i), N: int64(1000 * (i%1000 + 1))}); err != nil {
				fmt.Println("dispatch stopped:", err) // Ctrl-C: wraps context.Canceled
				break
			}
			sent++
		}
		pool.Close() // the workers finish what they hold and exit
	}()

	got, failed := 0, 0
	perWorker := make([]int, *workers)
	for r := range pool.Results() {
		if r.Err != nil {
			fmt.Printf("job %2d: failed: %v\n", r.Job.ID, r.Err)
			failed++
			continue
		}
		if got < 20 || got%10000 == 0 {
			fmt.Printf("job %2d: sum of squares 1..%-6d = %-16d (worker %d, pid %d)\n",
				r.Value.JobID, r.Job.N, r.Value.Sum, r.Value.Worker, r.Value.PID)
		}
		perWorker[r.Worker]++
		got++
	}
	st := pool.Stats()
	fmt.Printf("summary: %d jobs sent, %d results and %d failures from %d worker processes %v in %v\n",
		sent, got, failed, *workers, perWorker, time.Since(start).Round(time.Millisecond))
	fmt.Printf("workers: %d started, %d died, %d restarted; %d jobs retried\n", st.Started, st.Died, st.Restarted, st.Retried)
	if ctx.Err() != nil {
		fmt.Println("stopped by Ctrl-C: the workers finished the jobs they held")
	}
	if ctx.Err() == nil && got+failed != sent {
		return errors.New("some results are missing")
	}
	return nil
}
