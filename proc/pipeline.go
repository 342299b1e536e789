package proc

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
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
// that the neighbour's failure is the one reported. A stage's error names
// it by its index and command line: "proc: stage 2 (sort -n): exit status
// 1". No stage outlives Pipeline, or the calling process: each has SIGKILL
// as its parent-death signal.
//
// Each stage runs in a process group of its own, so that a terminal's
// Ctrl-C reaches only this process: under signal.NotifyContext, ctx ends
// and Pipeline stops the stages and returns context.Canceled, rather than
// the stages dying of the signal. A stage whose SysProcAttr sets Setpgid
// (with Pgid: syscall.Getpgrp() to stay in this process's group, to read
// the terminal say), Setsid or Foreground is left as it asks; see the
// package doc.
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
	sp := newSpawner()
	defer sp.close()
	ends, err := newPipelineEnds[In, Out](len(stages), feed != nil, drain != nil, opts)
	if err != nil {
		return err
	}
	defer ends.close()
	g, gctx := errgroup.WithContext(ctx)
	run := &stageRun{ctx: gctx}
	stop := context.AfterFunc(gctx, run.killAll)
	defer stop()
	for i, cmd := range stages {
		if err := run.start(g, sp, i, cmd, ends.of(i)...); err != nil {
			run.killAll()
			g.Wait() // reaps the started stages
			return err
		}
	}
	if feed != nil {
		g.Go(func() error {
			defer ends.feed.Close() // end of stream for the first stage
			return feed(gctx, ends.feed)
		})
	}
	if drain != nil {
		g.Go(func() error {
			defer ends.drain.Close()
			return drain(gctx, ends.drain)
		})
	}
	err = g.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if serr := run.firstErr(); serr != nil {
		return serr
	}
	return err
}

// pipelineEnds are the endpoints of a pipeline: between neighbours they
// carry what the stages agree on, which this process only hands on.
type pipelineEnds[In, Out any] struct {
	feed    *ipcchan.Sender[In]    // the first stage's input, or nil
	drain   *ipcchan.Receiver[Out] // the last stage's output, or nil
	ins     []endpoints.Passable   // stage i's "in", or nil
	outs    []endpoints.Passable   // stage i's "out", or nil
	toClose []interface{ Close() error }
}

func newPipelineEnds[In, Out any](n int, feed, drain bool, opts []ipcchan.Option) (_ *pipelineEnds[In, Out], err error) {
	e := &pipelineEnds[In, Out]{ins: make([]endpoints.Passable, n), outs: make([]endpoints.Passable, n)}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if feed {
		tx, rx, err := endpoints.PipePair[In](opts...)
		if err != nil {
			return nil, err
		}
		e.feed, e.ins[0] = tx, rx
		e.toClose = append(e.toClose, tx, rx)
	}
	for i := 0; i+1 < n; i++ {
		tx, rx, err := endpoints.PipePair[[]byte]()
		if err != nil {
			return nil, err
		}
		e.outs[i], e.ins[i+1] = tx, rx
		e.toClose = append(e.toClose, tx, rx)
	}
	if drain {
		tx, rx, err := endpoints.PipePair[Out](opts...)
		if err != nil {
			return nil, err
		}
		e.outs[n-1], e.drain = tx, rx
		e.toClose = append(e.toClose, tx, rx)
	}
	return e, nil
}

// of returns what stage i is handed: its "in" and its "out".
func (e *pipelineEnds[In, Out]) of(i int) []endpoints.Handed {
	var ends []endpoints.Handed
	if e.ins[i] != nil {
		ends = append(ends, endpoints.Pass("in", e.ins[i]))
	}
	if e.outs[i] != nil {
		ends = append(ends, endpoints.Pass("out", e.outs[i]))
	}
	return ends
}

func (e *pipelineEnds[In, Out]) close() {
	for _, c := range e.toClose {
		c.Close()
	}
}

// stageRun is the pipeline's stages in flight: those started, whether they
// were killed because another part failed, and the first stage's own
// failure (the cause, even when feed or drain saw its broken pipe first).
type stageRun struct {
	ctx context.Context // ends when any part fails

	mu            sync.Mutex
	started       []*exec.Cmd
	killed        bool
	firstStageErr error
}

// start starts stage i and waits for it in g.
func (r *stageRun) start(g *errgroup.Group, sp *spawner, i int, cmd *exec.Cmd, ends ...endpoints.Handed) error {
	r.mu.Lock()
	err := sp.start(cmd, false, ends...)
	if err == nil {
		r.started = append(r.started, cmd)
	}
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("proc: start stage %d (%s): %w", i, commandLine(cmd), err)
	}
	g.Go(func() error { return r.wait(i, cmd) })
	return nil
}

// wait waits for stage i and returns its failure: the context's error if
// it was killed because another part failed.
func (r *stageRun) wait(i int, cmd *exec.Cmd) error {
	err := cmd.Wait()
	if err == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && r.killed && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		return r.ctx.Err()
	}
	err = fmt.Errorf("proc: stage %d (%s): %w", i, commandLine(cmd), err)
	if r.firstStageErr == nil {
		r.firstStageErr = err
	}
	return err
}

// killAll kills every stage started.
func (r *stageRun) killAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	for _, cmd := range r.started {
		cmd.Process.Kill()
	}
}

func (r *stageRun) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstStageErr
}

// commandLine names a stage by its command line as a shell would take it:
// the program's base name and its arguments, quoted where they need it
// ("sort -n", "sh -c 'exit 1'").
func commandLine(cmd *exec.Cmd) string {
	args := cmd.Args
	if len(args) == 0 {
		args = []string{cmd.Path}
	}
	var b strings.Builder
	for i, a := range args {
		if i == 0 {
			a = filepath.Base(a)
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(shellQuote(a))
	}
	return b.String()
}

// shellQuote quotes a for a POSIX shell if it needs it.
func shellQuote(a string) string {
	plain := a != ""
	for _, c := range a {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_@%+=:,./-", c)) {
			plain = false
			break
		}
	}
	if plain {
		return a
	}
	return "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
}
