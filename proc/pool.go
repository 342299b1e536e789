package proc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// EnvWorker is set in a worker's environment to its index in the pool.
const EnvWorker = "IPCCHAN_WORKER"

// envTransport tells a worker whether its jobs and results come over pipes
// or rings.
const envTransport = "IPCCHAN_WORKER_TRANSPORT"

// WorkerArg is the argument with which the default command re-executes
// this program as a worker.
const WorkerArg = "ipcchan-worker"

// IsWorker reports whether this process was started as a pool worker.
func IsWorker() bool { _, ok := os.LookupEnv(EnvWorker); return ok }

// Transport says what carries jobs and results between the pool and a
// worker.
type Transport int

const (
	Pipes Transport = iota // a pipe each way (the default)
	Rings                  // a shared-memory ring each way: the fastest, for small jobs
)

// Options configure a pool. The zero value starts runtime.NumCPU()
// workers, re-executing this program with WorkerArg, over pipes.
type Options struct {
	// Workers is how many worker processes run at once.
	Workers int

	// Args are the arguments of the workers the default command starts
	// (this program re-executed), exactly: a worker's os.Args[1:]. Pass
	// os.Args[1:] to give the workers this program's flags, so that a
	// main that parses its flags before asking IsWorker sees the same
	// values in both. With no Args a worker gets WorkerArg alone: nothing
	// of this program's command line reaches the workers unless passed
	// here. Start refuses Args with a Command, which chooses its own.
	Args []string

	// Env is added to each worker's environment, which is otherwise this
	// process's (or, with Command, the command's Env if it is not nil): a
	// variable set in both takes Env's value. EnvWorker and the pool's
	// own variables are set last and cannot be overridden.
	Env []string

	// Command returns the command for worker i (its Env may be nil: the
	// pool adds its variables). Nil means this program with Args, or with
	// WorkerArg.
	Command func(i int) *exec.Cmd

	// Transport carries jobs and results.
	Transport Transport

	// InFlight is how many jobs a worker may hold at once (default 16):
	// more keeps a worker busy while results travel back.
	InFlight int

	// Restart starts a new worker in place of one that died.
	Restart bool

	// Retries is how many times a job a dead worker held is given to
	// another worker before it is reported failed (default 0).
	Retries int

	// ShareProcessGroup leaves the workers in this process's process
	// group. By default each worker has a group of its own, so that a
	// terminal's Ctrl-C (SIGINT, sent to the whole foreground group)
	// reaches only this process: its context ends (signal.NotifyContext)
	// and the pool drains, rather than every worker dying of the signal
	// with the jobs it holds. Set it for workers that must read the
	// terminal: in a group of their own they are a background job, and
	// reading the terminal stops them (SIGTTIN). A Command whose
	// SysProcAttr sets Setpgid, Setsid or Foreground is left as it is.
	ShareProcessGroup bool

	// OnEvent, if not nil, is told of every worker started, exited or
	// restarted and every job retried (see Event), as it happens. It is
	// called one event at a time, never concurrently, from the goroutine
	// of Start (for the first workers) or from the pool's own goroutines,
	// and the pool waits for it: it must return quickly, and must not
	// call Submit or Close (it may call Stats and PIDs). Events of one
	// worker come in order (started, its retried jobs after its exit,
	// then its replacement); the last comes before Results is closed.
	OnEvent func(Event)

	// EndpointOptions are given to the endpoints (a message size limit,
	// say). Jobs and results are encoded with codec.Default of J and R,
	// in an envelope that numbers them.
	EndpointOptions []ipcchan.Option
}

// Result is what became of one job.
type Result[J, R any] struct {
	Job    J
	Value  R     // the worker's answer, when Err is nil
	Err    error // the worker's error for the job, or a *WorkerError
	Worker int   // the index of the worker that answered or died
}

// WorkerError reports a worker that died with jobs in hand. It wraps
// ipcchan.ErrPeerGone.
type WorkerError struct {
	Worker   int
	PID      int
	Status   string         // how it ended, as os.ProcessState says
	ExitCode int            // its exit status, or -1 if a signal ended it
	Signal   syscall.Signal // the signal that ended it, or 0
}

func (e *WorkerError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("proc: worker %d (pid %d) died: %s", e.Worker, e.PID, e.Status)
}

// Unwrap returns ipcchan.ErrPeerGone.
func (e *WorkerError) Unwrap() error { return ipcchan.ErrPeerGone }

// JobError is the error a worker's handler returned for a job, carried back
// as text.
type JobError struct{ Msg string }

func (e *JobError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return e.Msg
}

// jobMsg and resultMsg are what travel: a job or result with its number.
type jobMsg[J any] struct {
	ID  uint64
	Job J
}

type resultMsg[R any] struct {
	ID    uint64
	Value R
	Err   string
	Ok    bool
}

// Pool is a set of worker processes taking typed jobs. Submit, Results
// and Close are safe for concurrent use.
type Pool[J, R any] struct {
	opts    Options
	parent  context.Context // Start's: its end stops the pool
	ctx     context.Context
	cancel  context.CancelFunc
	results chan Result[J, R]
	slots   chan struct{} // a token per job a worker may hold
	spawn   *spawner      // the pool's own thread starts every worker

	mu          sync.Mutex
	workers     []*worker[J, R]
	nextID      uint64
	closing     bool         // the job streams are closing: nothing more is dispatched
	draining    bool         // Close was called: Submit refuses, held jobs and retries finish
	outstanding int          // jobs submitted whose result is not out yet
	idle        *sync.Cond   // on mu: outstanding fell, or a worker died
	retry       []pending[J] // jobs of dead workers to hand out again
	running     sync.WaitGroup
	firstErr    error
	stats       Stats // but Workers and InFlight, counted when asked

	eventMu sync.Mutex // one OnEvent call at a time

	shutdownOnce sync.Once
}

type pending[J any] struct {
	job      J
	attempts int
}

type worker[J, R any] struct {
	index    int
	cmd      *exec.Cmd
	jobs     *ipcchan.Sender[jobMsg[J]]
	inflight map[uint64]pending[J]
	dead     bool
}

// Start starts the pool's workers. They run until Close, or until ctx
// ends: then dispatch stops, the workers see the end of their job
// streams, finish the jobs they hold and exit, and Results is closed once
// their results are in.
//
// Workers die with the pool's process: each is started with a
// parent-death signal (SIGKILL) from a thread that lives as long as the
// pool, and [Serve] also watches the parent's pid. Each is in a process
// group of its own (unless Options.ShareProcessGroup), so that a
// terminal's Ctrl-C reaches only this process: under signal.NotifyContext
// the pool then drains as above (see the package doc).
//
// Start returns an error if a worker cannot be started (those started are
// stopped), or if Options.Args is given with Options.Command.
func Start[J, R any](ctx context.Context, opts Options) (*Pool[J, R], error) {
	if ctx == nil {
		return nil, errNilContext("start")
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.InFlight <= 0 {
		opts.InFlight = 16
	}
	if len(opts.Args) > 0 && opts.Command != nil {
		return nil, errors.New("proc: start: Options.Args are for the default command: put the arguments in the command Options.Command returns")
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &Pool[J, R]{
		opts: opts, parent: ctx, ctx: pctx, cancel: cancel,
		results: make(chan Result[J, R], opts.Workers*opts.InFlight),
		slots:   make(chan struct{}, opts.Workers*opts.InFlight),
		spawn:   newSpawner(),
	}
	p.idle = sync.NewCond(&p.mu)
	p.workers = make([]*worker[J, R], opts.Workers)
	for i := range opts.Workers {
		if err := p.startWorker(i, EventStarted); err != nil {
			p.shutdown()
			return nil, err
		}
	}
	context.AfterFunc(pctx, p.shutdown)
	return p, nil
}

func (p *Pool[J, R]) command(i int) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	if p.opts.Command != nil {
		cmd = p.opts.Command(i)
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		args := p.opts.Args
		if len(args) == 0 {
			args = []string{WorkerArg}
		}
		cmd = exec.Command(exe, args...)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	}
	env := cmd.Env
	if env == nil {
		env = os.Environ()
	}
	// A new slice: the command's may be shared between workers. Of
	// duplicate variables exec keeps the last.
	cmd.Env = slices.Concat(env, p.opts.Env, []string{EnvWorker + "=" + strconv.Itoa(i), envTransport + "=" + strconv.Itoa(int(p.opts.Transport))})
	return cmd, nil
}

// pair makes a channel of the pool's transport.
func pair[T any](tr Transport, opts []ipcchan.Option) (*ipcchan.Sender[T], *ipcchan.Receiver[T], error) {
	if tr == Rings {
		return endpoints.RingPair[T](256+1<<20, opts...)
	}
	return endpoints.PipePair[T](opts...)
}

// startWorker starts worker i, puts it in its place and tells OnEvent
// (kind is EventStarted or EventRestarted).
func (p *Pool[J, R]) startWorker(i int, kind EventKind) error {
	cmd, err := p.command(i)
	if err != nil {
		return err
	}
	jc, rc, err := envelopeCodecs[J, R]()
	if err != nil {
		return err
	}
	jobsTx, jobsRx, err := pair[jobMsg[J]](p.opts.Transport, append(p.opts.EndpointOptions, ipcchan.WithCodec(jc)))
	if err != nil {
		return err
	}
	resTx, resRx, err := pair[resultMsg[R]](p.opts.Transport, append(p.opts.EndpointOptions, ipcchan.WithCodec(rc)))
	if err != nil {
		jobsTx.Close()
		jobsRx.Close()
		return err
	}
	if err := p.spawn.start(cmd, p.opts.ShareProcessGroup, endpoints.Pass("jobs", jobsRx), endpoints.Pass("results", resTx)); err != nil {
		jobsTx.Close()
		jobsRx.Close()
		resTx.Close()
		resRx.Close()
		return fmt.Errorf("proc: start worker %d: %w", i, err)
	}
	// Shared memory has no end of stream of its own: watch the worker. A
	// watch that cannot be set up (no descriptor left for the pidfd, say)
	// would leave its death unseen and the pool waiting for ever.
	if err := watchWorker(cmd.Process.Pid, resRx, jobsTx); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		jobsTx.Close()
		resRx.Close()
		return fmt.Errorf("proc: start worker %d: watch its process: %w", i, err)
	}
	w := &worker[J, R]{index: i, cmd: cmd, jobs: jobsTx, inflight: map[uint64]pending[J]{}}
	p.mu.Lock()
	p.workers[i] = w
	if p.closing { // the pool closed while it started
		w.jobs.Close()
	}
	p.stats.Started++
	if kind == EventRestarted {
		p.stats.Restarted++
	}
	p.mu.Unlock()
	p.event(Event{Kind: kind, Worker: i, PID: cmd.Process.Pid})
	p.running.Add(1)
	go p.collect(w, resRx)
	return nil
}

// event tells OnEvent of e, one event at a time; p.mu must not be held.
func (p *Pool[J, R]) event(e Event) {
	if p.opts.OnEvent == nil {
		return
	}
	p.eventMu.Lock()
	defer p.eventMu.Unlock()
	p.opts.OnEvent(e)
}

// watchWorker watches process pid from every end that needs it (those with
// no kernel end of stream); ends that need no watch are left alone.
func watchWorker(pid int, ends ...interface{ WatchPeer(int) error }) error {
	for _, e := range ends {
		if err := e.WatchPeer(pid); err != nil && !errors.Is(err, ipcchan.ErrNotSupported) {
			return err
		}
	}
	return nil
}

// collect turns a worker's results into Results, and its death into
// failed or retried jobs.
func (p *Pool[J, R]) collect(w *worker[J, R], rx *ipcchan.Receiver[resultMsg[R]]) {
	defer p.running.Done()
	defer rx.Close()
	var msg resultMsg[R]
	for {
		err := rx.RecvInto(context.Background(), &msg)
		if err != nil {
			break
		}
		p.mu.Lock()
		job, ok := w.inflight[msg.ID]
		delete(w.inflight, msg.ID)
		p.mu.Unlock()
		if !ok {
			continue // an answer to a job it never had: ignore it
		}
		r := Result[J, R]{Job: job.job, Value: msg.Value, Worker: w.index}
		if !msg.Ok {
			r.Err = &JobError{Msg: msg.Err}
		}
		p.emit(r)
	}
	w.jobs.Close()
	waitErr := w.cmd.Wait()
	status := "exited"
	if w.cmd.ProcessState != nil {
		status = w.cmd.ProcessState.String()
	}
	code, sig := exitOf(w.cmd.ProcessState)
	pid := w.cmd.Process.Pid
	werr := &WorkerError{Worker: w.index, PID: pid, Status: status, ExitCode: code, Signal: sig}
	p.mu.Lock()
	w.dead = true
	lost := w.inflight
	w.inflight = nil
	var failed, retried []pending[J]
	for _, job := range lost {
		if job.attempts < p.opts.Retries && !p.closing {
			job.attempts++
			retried = append(retried, job)
		} else {
			failed = append(failed, job)
		}
	}
	died := waitErr != nil || len(lost) > 0
	restart := p.opts.Restart && !p.closing && died
	p.idle.Broadcast()
	if waitErr != nil && p.firstErr == nil && !p.opts.Restart {
		p.firstErr = werr
	}
	p.stats.Exited++
	if died {
		p.stats.Died++
	}
	p.stats.Retried += len(retried)
	p.mu.Unlock()
	exited := Event{Kind: EventExited, Worker: w.index, PID: pid, ExitCode: code, Signal: sig}
	if died {
		exited.Err = werr
	}
	p.event(exited)
	for _, job := range retried {
		p.event(Event{Kind: EventRetried, Worker: w.index, PID: pid, Err: werr, Job: job.job, Attempt: job.attempts})
	}
	// Queued after their events, so that no retry's result comes before.
	p.mu.Lock()
	p.retry = append(p.retry, retried...)
	p.mu.Unlock()
	for _, job := range failed {
		p.emit(Result[J, R]{Job: job.job, Err: werr, Worker: w.index})
	}
	if restart {
		if err := p.startWorker(w.index, EventRestarted); err != nil {
			p.event(Event{Kind: EventRestartFailed, Worker: w.index, PID: pid, Err: err})
		}
	}
	p.dispatchRetries()
}

// liveWorkers counts the workers alive; p.mu is held.
func (p *Pool[J, R]) liveWorkers() int {
	n := 0
	for _, w := range p.workers {
		if w != nil && !w.dead {
			n++
		}
	}
	return n
}

// emit delivers a job's result and frees its slot.
func (p *Pool[J, R]) emit(r Result[J, R]) {
	p.results <- r
	<-p.slots
	p.mu.Lock()
	p.outstanding--
	if r.Err == nil {
		p.stats.Done++
	} else {
		p.stats.Failed++
	}
	p.idle.Broadcast()
	p.mu.Unlock()
}

// dispatchRetries hands the jobs of dead workers to live ones.
func (p *Pool[J, R]) dispatchRetries() {
	for {
		p.mu.Lock()
		if len(p.retry) == 0 || p.closing {
			// Jobs left over at closing are reported failed.
			left := p.retry
			p.retry = nil
			p.mu.Unlock()
			for _, job := range left {
				p.emit(Result[J, R]{Job: job.job, Err: p.stopped("retry", fmt.Errorf("the pool is closing, not retrying a dead worker's job: %w", ipcchan.ErrPeerGone)), Worker: -1})
			}
			return
		}
		job := p.retry[0]
		p.retry = p.retry[1:]
		p.mu.Unlock()
		if err := p.dispatch(p.ctx, job, false); err != nil {
			p.emit(Result[J, R]{Job: job.job, Err: err, Worker: -1})
		}
	}
}

// Submit hands job to a worker, waiting while every worker holds as many
// jobs as it may. Its result comes on Results. It returns ctx.Err() if ctx
// ends first, an error wrapping os.ErrClosed after Close or once the pool's
// context ended (wrapping that context's error too, context.Canceled say),
// and an error wrapping ipcchan.ErrPeerGone if no worker is alive.
func (p *Pool[J, R]) Submit(ctx context.Context, job J) error {
	switch {
	case !p.made():
		return errZeroPool("submit")
	case ctx == nil:
		return errNilContext("submit")
	}
	// A free slot is taken without the three-way select; an ended ctx
	// refuses the job even then (the select would pick at random), and
	// a closed pool is refused below either way.
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	default:
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.ctx.Done():
			return p.stopped("submit", os.ErrClosed)
		}
	}
	p.mu.Lock()
	if p.draining {
		p.mu.Unlock()
		<-p.slots
		return p.stopped("submit", os.ErrClosed)
	}
	p.outstanding++
	p.stats.Submitted++
	// dispatch goes on under the same lock.
	if err := p.dispatch(ctx, pending[J]{job: job}, true); err != nil {
		<-p.slots
		p.mu.Lock()
		p.outstanding--
		p.stats.Submitted--
		p.idle.Broadcast()
		p.mu.Unlock()
		return err
	}
	return nil
}

// dispatch sends job to the live worker holding the fewest jobs; a slot is
// already taken for it. A worker found dead on the way is passed over.
// With locked, the caller holds p.mu (dispatch lets go of it).
func (p *Pool[J, R]) dispatch(ctx context.Context, job pending[J], locked bool) error {
	for {
		if !locked {
			p.mu.Lock()
		}
		locked = false
		if p.closing {
			p.mu.Unlock()
			return p.stopped("submit", os.ErrClosed)
		}
		var best *worker[J, R]
		for _, w := range p.workers {
			if w != nil && !w.dead && (best == nil || len(w.inflight) < len(best.inflight)) {
				best = w
			}
		}
		if best == nil {
			p.mu.Unlock()
			return fmt.Errorf("proc: submit: no worker alive: %w", ipcchan.ErrPeerGone)
		}
		p.nextID++
		id := p.nextID
		best.inflight[id] = job
		p.mu.Unlock()
		err := best.jobs.Send(ctx, jobMsg[J]{ID: id, Job: job.job})
		if err == nil {
			return nil
		}
		p.mu.Lock()
		_, still := best.inflight[id]
		delete(best.inflight, id)
		gone := errors.Is(err, ipcchan.ErrPeerGone) || errors.Is(err, os.ErrClosed)
		closing := p.closing
		if gone && !closing {
			best.dead = true // its collector will see to the rest
		}
		p.mu.Unlock()
		switch {
		case !still:
			return nil // the worker died and its collector took the job over
		case gone && closing:
			return p.stopped("submit", err) // the pool closed its job stream
		case !gone || ctx.Err() != nil:
			return fmt.Errorf("proc: submit to worker %d: %w", best.index, err)
		}
	}
}

// stopped is the error for a job refused or dropped because the pool is
// closing: err, and the end of the pool's context (context.Canceled, say,
// with its cause) if that is why.
func (p *Pool[J, R]) stopped(op string, err error) error {
	cerr := p.parent.Err()
	if cerr == nil {
		return fmt.Errorf("proc: %s: %w", op, err)
	}
	if cause := context.Cause(p.parent); cause != nil && cause != cerr {
		cerr = fmt.Errorf("%w: %v", cerr, cause)
	}
	return fmt.Errorf("proc: %s: %w (the pool's context ended: %w)", op, err, cerr)
}

// Stats returns what the pool has done so far: workers started, exited,
// died and restarted, jobs submitted, retried and done. It is safe for
// concurrent use, from OnEvent too; a zero Pool's are zero.
func (p *Pool[J, R]) Stats() Stats {
	if !p.made() {
		return Stats{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.stats
	st.Workers = p.liveWorkers()
	st.InFlight = p.outstanding
	return st
}

// PIDs returns the process ids of the live workers.
func (p *Pool[J, R]) PIDs() []int {
	if !p.made() {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var pids []int
	for _, w := range p.workers {
		if w != nil && !w.dead {
			pids = append(pids, w.cmd.Process.Pid)
		}
	}
	return pids
}

// Results returns the channel on which every submitted job's Result
// arrives, exactly once. It is closed after Close (or the end of the
// pool's context) once every worker has finished. Receive from it while
// submitting: its buffer holds only as many results as the workers hold
// jobs.
//
// A Pool nobody started has no results: its channel is closed.
func (p *Pool[J, R]) Results() <-chan Result[J, R] {
	if !p.made() {
		c := make(chan Result[J, R])
		close(c)
		return c
	}
	return p.results
}

// Close stops taking jobs, waits until every job submitted has its result
// (retrying the jobs of workers that die, as Retries allows), then ends
// the job streams: the workers exit. Receive from Results concurrently
// until it is closed. Close returns once the workers are gone, with the
// first worker's failure (a *WorkerError) if one died and Restart was off.
// Close is idempotent.
func (p *Pool[J, R]) Close() error {
	if !p.made() {
		return errZeroPool("close")
	}
	p.mu.Lock()
	p.draining = true
	for p.outstanding > 0 && !p.closing && p.liveWorkers() > 0 {
		p.idle.Wait()
	}
	p.mu.Unlock()
	p.shutdown()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}

// shutdown ends dispatch and the job streams, waits for the workers and
// closes Results. Concurrent callers wait for the first.
func (p *Pool[J, R]) shutdown() {
	p.shutdownOnce.Do(func() {
		p.mu.Lock()
		p.closing, p.draining = true, true
		ws := append([]*worker[J, R](nil), p.workers...)
		p.idle.Broadcast()
		p.mu.Unlock()
		for _, w := range ws {
			if w != nil {
				w.jobs.Close() // end of stream: the worker finishes and exits
			}
		}
		p.running.Wait()
		p.spawn.close()
		close(p.results)
		p.cancel()
	})
}

// made reports whether p was made by Start (and is not a zero or nil Pool).
func (p *Pool[J, R]) made() bool { return p != nil && p.ctx != nil }

func errZeroPool(op string) error {
	return fmt.Errorf("proc: %s: a zero Pool: start one with proc.Start", op)
}

func errNilContext(op string) error {
	return fmt.Errorf("proc: %s: nil context.Context: pass context.Background() when nothing should cancel it", op)
}

// ErrNotWorker is returned by Serve in a process not started as a worker.
var ErrNotWorker = errors.New("proc: not started as a pool worker")
