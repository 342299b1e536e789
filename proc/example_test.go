package proc_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/proc"
)

// A pool of two worker processes squaring numbers. The workers are this
// program started again; in a program of your own, main begins with
//
//	if proc.IsWorker() {
//		err := proc.Serve(ctx, func(ctx context.Context, n int64) (int64, error) { return n * n, nil })
//		...
//		return
//	}
//
// and Options.Command can stay nil. (Here the test binary is that program:
// its TestMain serves, and squareWorker says which handler.)
func ExampleStart() {
	ctx := context.Background()
	pool, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 2, Command: squareWorker})
	if err != nil {
		panic(err)
	}
	go func() {
		for n := range int64(5) {
			pool.Submit(ctx, n)
		}
		pool.Close() // no more jobs: Results closes once every answer is in
	}()
	var squares []int64
	for r := range pool.Results() {
		if r.Err != nil {
			panic(r.Err)
		}
		squares = append(squares, r.Value)
	}
	slices.Sort(squares) // the workers answer in any order
	fmt.Println(squares)
	// Output: [0 1 4 9 16]
}

// squareWorker is the command of a worker that squares.
func squareWorker(int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], proc.WorkerArg)
	cmd.Env = append(os.Environ(), "IPCCHAN_TEST_MODE=square")
	cmd.Stderr = os.Stderr
	return cmd
}

// Two stages in a line, each a process: the first doubles numbers, the
// second formats them. Each stage reads "in" and writes "out" (see
// endpoints.InheritReceiver, InheritSender); here both are this program
// started again (see the stage function of this package's tests).
func ExamplePipeline() {
	stages := []*exec.Cmd{stageCmd("double"), stageCmd("format")}
	feed := func(ctx context.Context, tx *ipcchan.Sender[int64]) error {
		for n := range int64(3) {
			if err := tx.Send(ctx, n); err != nil {
				return err
			}
		}
		return nil // Pipeline closes tx
	}
	drain := func(ctx context.Context, rx *ipcchan.Receiver[string]) error {
		for s, err := range rx.All(ctx) {
			if err != nil {
				return err
			}
			fmt.Printf("%q\n", s)
		}
		return nil
	}
	if err := proc.Pipeline(context.Background(), stages, feed, drain); err != nil {
		panic(err)
	}
	// Output:
	// "0"
	// "2"
	// "4"
}

// Watching a pool: OnEvent is told of each worker started, exited (with
// its exit status, or the signal that killed it), restarted, and each job
// retried; Stats counts them with the jobs. OnEvent runs in the pool's
// goroutines, one event at a time: it must return quickly.
func ExampleOptions_onEvent() {
	ctx := context.Background()
	pool, err := proc.Start[int64, int64](ctx, proc.Options{
		Workers: 1, Command: squareWorker, Restart: true,
		OnEvent: func(e proc.Event) {
			// e.PID, e.Signal, e.Job... say more; print what does not
			// change from run to run (a log would print e).
			if e.Kind == proc.EventExited {
				fmt.Println("worker", e.Worker, e.Kind, "with status", e.ExitCode, "error", e.Err)
			} else {
				fmt.Println("worker", e.Worker, e.Kind)
			}
		},
	})
	if err != nil {
		panic(err)
	}
	go func() {
		for n := range int64(3) {
			pool.Submit(ctx, n)
		}
		pool.Close()
	}()
	for range pool.Results() {
	}
	st := pool.Stats()
	fmt.Printf("%d started, %d died, %d jobs done\n", st.Started, st.Died, st.Done)
	// Output:
	// worker 0 started
	// worker 0 exited with status 0 error <nil>
	// 1 started, 0 died, 3 jobs done
}

// Workers get the arguments and environment the caller chooses: here
// each worker is this program started with "-greeting hello" (pass
// os.Args[1:] to give the workers this program's own flags) and an extra
// variable. (The worker, in this package's TestMain, answers with its
// arguments and variables.)
func ExampleOptions_args() {
	ctx := context.Background()
	pool, err := proc.Start[int64, string](ctx, proc.Options{
		Workers: 1,
		Args:    []string{"-greeting", "hello"},
		Env:     []string{"PROC_TEST_OVERRIDE=from", "PROC_TEST_NEW=Env", "IPCCHAN_TEST_MODE=args"},
	})
	if err != nil {
		panic(err)
	}
	go func() { pool.Submit(ctx, 0); pool.Close() }()
	for r := range pool.Results() {
		fmt.Println(r.Value, r.Err)
	}
	// Output: ["-greeting" "hello"] from Env 0 <nil>
}
