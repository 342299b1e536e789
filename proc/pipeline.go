package proc

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sync/errgroup"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// Pipeline runs stages as processes connected in a line: each stage reads
// the previous one's output from the endpoint it inherits as "in" and
// writes its own to "out" (endpoints.InheritReceiver / InheritSender, with
// whatever element types the two neighbours agree on — the handshake
// checks). feed, if not nil, writes the first stage's input, and drain, if
// not nil, reads the last stage's output, in this process; each closes
// nothing itself: Pipeline closes every endpoint.
//
// Pipeline returns when every stage has exited and feed and drain have
// returned. The first failure — a stage exiting with an error, feed or
// drain returning one — or the end of ctx stops the whole pipeline: the
// other stages are killed, every endpoint is closed, and the error is
// returned: ctx.Err() for a cancelled context, else the first stage error
// observed (a stage's own failure, not the broken pipe feed or drain saw
// because of it), else feed's or drain's. A stage that stops because a
// neighbour went away (ipcchan.ErrPeerGone) should exit with status 0 so
// that the neighbour's failure is the one reported. No stage outlives
// Pipeline, or the calling process: each has SIGKILL as its parent-death
// signal.
func Pipeline[In, Out any](ctx context.Context, stages []*exec.Cmd,
	feed func(context.Context, *ipcchan.Sender[In]) error,
	drain func(context.Context, *ipcchan.Receiver[Out]) error,
	opts ...ipcchan.Option) error {
	if ctx == nil {
		return errNilContext("pipeline")
	}
	if len(stages) == 0 {
		return fmt.Errorf("proc: a pipeline needs a stage")
	}
	g, gctx := errgroup.WithContext(ctx)
	sp := newSpawner()
	defer sp.close()

	// The endpoints between neighbours carry what the stages agree on:
	// this process only hands the descriptors on.
	var feedTx *ipcchan.Sender[In]
	var drainRx *ipcchan.Receiver[Out]
	ins := make([]endpoints.Passable, len(stages))
	outs := make([]endpoints.Passable, len(stages))
	var toClose []interface{ Close() error }
	closeAll := func() {
		for _, c := range toClose {
			c.Close()
		}
	}
	if feed != nil {
		tx, rx, err := endpoints.PipePair[In](opts...)
		if err != nil {
			return err
		}
		feedTx, ins[0] = tx, rx
		toClose = append(toClose, tx, rx)
	}
	for i := 0; i+1 < len(stages); i++ {
		tx, rx, err := endpoints.PipePair[[]byte]()
		if err != nil {
			closeAll()
			return err
		}
		outs[i], ins[i+1] = tx, rx
		toClose = append(toClose, tx, rx)
	}
	if drain != nil {
		tx, rx, err := endpoints.PipePair[Out](opts...)
		if err != nil {
			closeAll()
			return err
		}
		outs[len(stages)-1], drainRx = tx, rx
		toClose = append(toClose, tx, rx)
	}
	defer closeAll()

	var (
		mu            sync.Mutex
		started       []*exec.Cmd
		killed        bool  // by stop, because another part failed
		firstStageErr error // the cause, even when feed or drain saw its broken pipe first
	)
	stop := context.AfterFunc(gctx, func() {
		mu.Lock()
		defer mu.Unlock()
		killed = true
		for _, cmd := range started {
			cmd.Process.Kill()
		}
	})
	defer stop()
	for i, cmd := range stages {
		var ends []endpoints.Handed
		if ins[i] != nil {
			ends = append(ends, endpoints.Pass("in", ins[i]))
		}
		if outs[i] != nil {
			ends = append(ends, endpoints.Pass("out", outs[i]))
		}
		mu.Lock()
		err := sp.start(cmd, ends...)
		if err == nil {
			started = append(started, cmd)
		}
		mu.Unlock()
		if err != nil {
			mu.Lock()
			killed = true
			for _, c := range started {
				c.Process.Kill()
			}
			mu.Unlock()
			g.Wait() // reaps the started stages
			return fmt.Errorf("proc: start stage %d: %w", i, err)
		}
		g.Go(func() error {
			err := cmd.Wait()
			if err == nil {
				return nil
			}
			mu.Lock()
			defer mu.Unlock()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && killed && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				return gctx.Err() // killed because another part failed
			}
			err = fmt.Errorf("proc: stage %d (%s): %w", i, cmd.Path, err)
			if firstStageErr == nil {
				firstStageErr = err
			}
			return err
		})
	}
	if feed != nil {
		g.Go(func() error {
			defer feedTx.Close() // end of stream for the first stage
			return feed(gctx, feedTx)
		})
	}
	if drain != nil {
		g.Go(func() error {
			defer drainRx.Close()
			return drain(gctx, drainRx)
		})
	}
	err := g.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	if firstStageErr != nil {
		return firstStageErr
	}
	return err
}
