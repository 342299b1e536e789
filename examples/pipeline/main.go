// Command pipeline runs three process stages in a line, fed and drained by
// the parent, with package proc's Pipeline:
//
//	parent --numbers--> primes --primes--> square --squares--> format --lines--> parent
//
//	go run ./examples/pipeline
//	go run ./examples/pipeline -n 2000000      # long enough to press Ctrl-C
//
// Each stage is this program re-executed with the stage's name as its
// argument (-stage square), which also names it in an error ("stage 1
// (pipeline -stage square): exit status 1"); it reads its input as the
// endpoint "in" and writes "out", typed (the handshake checks that
// neighbours agree). Any stage failing stops every stage, closes every
// endpoint and reports the first error; no process is left behind. Ctrl-C
// reaches only the parent (the stages are in process groups of their
// own): its context ends, and Pipeline stops the stages and returns
// context.Canceled.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/proc"
)

func main() {
	n := flag.Int64("n", 100, "numbers to feed")
	stage := flag.String("stage", "", "run as this stage (primes, square, format)")
	flag.Parse()
	var err error
	if *stage != "" {
		err = runStage(*stage)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		err = run(ctx, *n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipeline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int64) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	stage := func(name string) *exec.Cmd {
		cmd := exec.Command(exe, "-stage", name)
		cmd.Stderr = os.Stderr
		return cmd
	}
	start := time.Now()
	lines := 0
	err = proc.Pipeline(ctx, []*exec.Cmd{stage("primes"), stage("square"), stage("format")},
		func(ctx context.Context, numbers *ipcchan.Sender[int64]) error {
			for i := range n {
				if err := numbers.Send(ctx, i); err != nil {
					return err
				}
			}
			return nil
		},
		func(ctx context.Context, out *ipcchan.Receiver[string]) error {
			for line, err := range out.All(ctx) {
				if err != nil {
					return err
				}
				if lines++; lines <= 10 || lines%10000 == 0 {
					fmt.Println(line)
				}
			}
			return nil
		})
	fmt.Printf("%d lines through 3 process stages in %v", lines, time.Since(start).Round(time.Millisecond))
	if err != nil {
		fmt.Printf(", stopped: %v\n", err)
		if ctx.Err() != nil {
			return nil // Ctrl-C: a clean stop
		}
		return err
	}
	fmt.Println()
	return nil
}

func runStage(name string) error {
	switch name {
	case "primes":
		return filterStage(func(v int64) (int64, bool) { return v, prime(v) })
	case "square":
		return filterStage(func(v int64) (int64, bool) { return v * v, true })
	}
	return filterStage(func(v int64) (string, bool) { return fmt.Sprintf("the square of a prime: %d", v), true })
}

// filterStage is one process of the pipeline: it sends on what f makes of each
// value it receives, where f says to keep it, until its input ends.
func filterStage[In, Out any](f func(In) (Out, bool)) error {
	ctx := context.Background()
	in, err := endpoints.InheritReceiver[In]("in")
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := endpoints.InheritSender[Out]("out")
	if err != nil {
		return err
	}
	defer out.Close()
	for v, err := range in.All(ctx) {
		if err != nil {
			return err
		}
		if w, keep := f(v); keep {
			if err := out.Send(ctx, w); err != nil {
				return err
			}
		}
	}
	return nil
}

func prime(n int64) bool {
	if n < 2 {
		return false
	}
	for d := int64(2); d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}
