// Command workerpool is the main demo of ipcchan: a parent process fans jobs
// out to worker processes over pipes, typed as Go values, and collects the
// results over one pipe that every worker shares.
//
//	go run ./examples/workerpool
//	go run ./examples/workerpool -workers 4 -jobs 100
//
// The workers are this same program, re-executed with the argument
// "worker"; each inherits its endpoints by name. Ctrl-C cancels the context,
// which stops dispatch; the workers see the end of their job streams and
// exit, and the parent reports what finished.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"time"

	"github.com/ipcchan/ipcchan/endpoints"
	"github.com/ipcchan/ipcchan/ipcchan"
)

// Job asks a worker for the sum of the squares 1² + ... + N².
type Job struct {
	ID int64
	N  int64
}

// Result is a worker's answer. Fixed-size structs like these travel with the
// binary codec: no reflection and no allocation per message.
type Result struct {
	JobID  int64
	Worker int64
	PID    int64
	Sum    int64
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := worker(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		return
	}
	workers := flag.Int("workers", 3, "worker processes")
	jobs := flag.Int("jobs", 12, "jobs to hand out")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *workers, *jobs); err != nil {
		fmt.Fprintln(os.Stderr, "workerpool:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nworkers, njobs int) error {
	start := time.Now()
	// One results pipe shared by every worker: frames stay whole because
	// inherited senders write each one atomically (PIPE_BUF).
	resultsTx, results, err := endpoints.Pipe[Result]()
	if err != nil {
		return err
	}
	defer results.Close()

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var jobs []*ipcchan.Sender[Job]
	var cmds []*exec.Cmd
	for w := range nworkers {
		jobsTx, jobsRx, err := endpoints.Pipe[Job]()
		if err != nil {
			return err
		}
		cmd := exec.Command(exe, "worker")
		cmd.Env = append(os.Environ(), fmt.Sprintf("WORKER_ID=%d", w))
		cmd.Stderr = os.Stderr
		err = endpoints.Start(cmd, endpoints.Pass("jobs", jobsRx), endpoints.Share("results", resultsTx))
		if err != nil {
			return fmt.Errorf("start worker %d: %w", w, err)
		}
		fmt.Printf("started worker %d as pid %d\n", w, cmd.Process.Pid)
		jobs = append(jobs, jobsTx)
		cmds = append(cmds, cmd)
	}
	// Every worker has its copy: drop ours so that the results stream ends
	// when the last worker closes its end.
	resultsTx.Close()

	// Dispatch round-robin; a cancelled ctx stops it.
	sent := 0
	for i := range njobs {
		job := Job{ID: int64(i), N: int64(1000 * (i + 1))}
		if err := jobs[i%nworkers].Send(ctx, job); err != nil {
			fmt.Println("dispatch stopped:", err)
			break
		}
		sent++
	}
	for _, tx := range jobs {
		tx.Close() // the worker sees io.EOF after its last job
	}

	// Collect until every worker has closed the results pipe.
	got := 0
	perWorker := make([]int, nworkers)
	for r, err := range results.All(context.Background()) {
		if err != nil {
			return err
		}
		fmt.Printf("job %2d: sum of squares 1..%-6d = %-16d (worker %d, pid %d)\n",
			r.JobID, 1000*(r.JobID+1), r.Sum, r.Worker, r.PID)
		perWorker[r.Worker]++
		got++
	}
	for w, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("worker %d: %w", w, err)
		}
	}
	fmt.Printf("summary: %d jobs sent, %d results received from %d worker processes %v in %v\n",
		sent, got, nworkers, perWorker, time.Since(start).Round(time.Millisecond))
	if got != sent {
		return errors.New("some results are missing")
	}
	return nil
}

func worker() error {
	// Ctrl-C reaches the whole process group: let the parent decide, and
	// stop when the job stream ends.
	signal.Ignore(os.Interrupt)
	var id int64
	fmt.Sscan(os.Getenv("WORKER_ID"), &id)
	jobs, err := endpoints.InheritReceiver[Job]("jobs")
	if err != nil {
		return err
	}
	defer jobs.Close()
	results, err := endpoints.InheritSender[Result]("results")
	if err != nil {
		return err
	}
	defer results.Close()
	ctx := context.Background()
	for job, err := range jobs.All(ctx) {
		if err != nil {
			return err
		}
		var sum int64
		for k := int64(1); k <= job.N; k++ {
			sum += k * k
		}
		r := Result{JobID: job.ID, Worker: id, PID: int64(os.Getpid()), Sum: sum}
		if err := results.Send(ctx, r); err != nil {
			return err
		}
	}
	return nil
}
