// Command priorityqueue shows urgent jobs overtaking normal ones between
// processes, over a POSIX message queue whose message priority is the
// ipcchan tag.
//
//	go run ./examples/priorityqueue
//
// The parent queues a backlog of normal jobs (priority 1) for a worker
// process that handles one every few milliseconds, then, while the backlog
// is still long, two urgent jobs (priority 10). The queue hands the worker
// the highest priority first, so the urgent jobs are handled next, ahead of
// everything queued before them. The worker reports each job over a pipe
// as it finishes it; the parent prints the order. The queue has no name:
// it is created, unlinked at once and handed to the worker as a
// descriptor, so nothing is left in /dev/mqueue however the programs end.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"time"

	"github.com/ipcchan/go/endpoints"
)

// Job is a unit of work; Urgent marks the ones sent with high priority.
type Job struct {
	ID     int32
	Urgent bool
}

const (
	normal  = 1
	urgent  = 10
	backlog = 16 // normal jobs; the queue holds 10
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := worker(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "priorityqueue:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	jobs, jobsRx, err := endpoints.MQPair[Job](endpoints.MQAttr{MaxMsgs: 10, MsgSize: 64})
	if err != nil {
		return err
	}
	defer jobs.Close()
	doneTx, done, err := endpoints.PipePair[Job]()
	if err != nil {
		return err
	}
	defer done.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "worker")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := endpoints.Start(cmd, endpoints.Pass("jobs", jobsRx), endpoints.Pass("done", doneTx)); err != nil {
		return err
	}
	// A queue has no kernel end of stream: each side watches the other's
	// process, so that a crash on either side ends the other's waits.
	if err := done.WatchPeer(cmd.Process.Pid); err != nil {
		return err
	}

	// A backlog of normal jobs: the queue holds 10, so Send waits for room
	// as the worker takes them.
	for id := range int32(backlog) {
		if err := jobs.SendTag(ctx, normal, Job{ID: id}); err != nil {
			return err
		}
	}
	fmt.Printf("queued normal jobs 0-%d, then urgent jobs 100 and 101\n", backlog-1)
	for _, id := range []int32{100, 101} {
		if err := jobs.SendTag(ctx, urgent, Job{ID: id, Urgent: true}); err != nil {
			return err
		}
	}
	if err := jobs.Close(); err != nil { // end of stream for the worker
		return err
	}
	var order []int32
	for j, err := range done.All(ctx) {
		if err != nil {
			return err
		}
		order = append(order, j.ID)
		kind := "normal"
		if j.Urgent {
			kind = "URGENT"
		}
		fmt.Printf("worker finished %s job %d\n", kind, j.ID)
	}
	if err := cmd.Wait(); err != nil {
		return err
	}
	// The last normal job was still queued when the urgent ones were
	// sent: they must have overtaken it.
	last := slices.Index(order, backlog-1)
	if slices.Index(order, 100) > last || slices.Index(order, 101) > last {
		return fmt.Errorf("the urgent jobs did not overtake the backlog: %v", order)
	}
	fmt.Println("order:", order)
	return nil
}

func worker() error {
	jobs, err := endpoints.InheritReceiver[Job]("jobs")
	if err != nil {
		return err
	}
	defer jobs.Close()
	done, err := endpoints.InheritSender[Job]("done")
	if err != nil {
		return err
	}
	defer done.Close()
	if err := jobs.WatchPeer(os.Getppid()); err != nil {
		return err
	}
	ctx := context.Background()
	for job, err := range jobs.All(ctx) {
		if err != nil {
			return err
		}
		time.Sleep(5 * time.Millisecond) // the work
		if err := done.Send(ctx, job); err != nil {
			return err
		}
	}
	return nil
}
