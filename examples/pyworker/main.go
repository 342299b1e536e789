// Command pyworker runs a worker pool (proc.Start) whose workers are a
// Python program, worker.py, using the ipcchan package of clients/python:
// the pool's Go code is the same as for Go workers; only Options.Command
// says what to run. Jobs are a fixed-size struct (binary-le), results
// strings; a job with a negative N fails in Python, and the pool reports
// the Python exception's text as the job's error. It needs python3;
// without it, it says so and exits.
//
//	go run ./examples/pyworker -workers 2 -jobs 20
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"

	"github.com/ipcchan/go/proc"
)

// Job is worker.py's Job, field for field.
type Job struct {
	N     int64
	Scale float64
}

func main() {
	workers := flag.Int("workers", 2, "Python worker processes")
	jobs := flag.Int("jobs", 20, "jobs to hand out (the first one fails)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *workers, *jobs); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, workers, jobs int) error {
	python, err := exec.LookPath("python3")
	if err != nil {
		fmt.Println("pyworker needs python3 to run its workers; none is installed")
		return nil
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return fmt.Errorf("cannot find worker.py: no source path")
	}
	dir := filepath.Dir(self)
	script := filepath.Join(dir, "worker.py")
	pkg := filepath.Join(dir, "..", "..", "clients", "python") // the ipcchan package

	pool, err := proc.Start[Job, string](ctx, proc.Options{
		Workers: workers,
		Command: func(int) *exec.Cmd {
			cmd := exec.Command(python, script)
			cmd.Env = append(os.Environ(), "PYTHONPATH="+pkg)
			cmd.Stderr = os.Stderr
			return cmd
		},
	})
	if err != nil {
		return err
	}
	go func() {
		defer pool.Close()
		for i := range jobs {
			if err := pool.Submit(ctx, Job{N: int64(i - 1), Scale: 1.5}); err != nil {
				return
			}
		}
	}()
	done, failed := 0, 0
	for r := range pool.Results() {
		if r.Err != nil {
			fmt.Printf("job %+v failed: %v\n", r.Job, r.Err)
			failed++
			continue
		}
		fmt.Printf("worker %d: %s\n", r.Worker, r.Value)
		done++
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if done != jobs-1 || failed != 1 {
		return fmt.Errorf("%d jobs done and %d failed, want %d and 1", done, failed, jobs-1)
	}
	fmt.Printf("%d jobs answered by %d Python workers, 1 failed as it should\n", done, workers)
	return nil
}
