package natsjs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// A worker pool across hosts: Pool.Do publishes a job to the channel
// "<pool>-jobs" (a work queue shared by every Pool and every Serve of that
// pool name), a worker running Serve takes it, runs the work function and
// publishes the result to the submitting Pool's own channel
// "<pool>-results-<id>", which the Pool reads and hands to the Do waiting
// for it. Both are ordinary natsjs channels (PROTOCOL.md §15: the payload is
// the codec's bytes of J or R); the pool adds three headers:
//
//	Ipcchan-Job:   the job's id, "<pool id>.<n>", on the job and its result
//	Ipcchan-Reply: the name of the submitting Pool's results channel, on the job
//	Ipcchan-Error: the work function's error as text, on a result that is one
//
// A job is published with Nats-Msg-Id = its id (a Do that retries a publish
// does not submit it twice) and so is its result: a worker acknowledges a job
// only after the result is stored, so if it dies in between, the job goes to
// another worker whose result the results stream drops as a duplicate.
const (
	hdrJob   = "Ipcchan-Job"
	hdrReply = "Ipcchan-Reply"
	hdrError = "Ipcchan-Error"
)

// The metadata the workers' consumer of a pool's jobs channel records: the
// result type, so that a Serve or a Pool whose R differs is refused at open
// rather than sending results nobody can decode (the stream records the
// job type, as every channel's does).
const (
	metaPoolResultCodec = "ipcchan.pool.result.codec"
	metaPoolResultType  = "ipcchan.pool.result.type"
	metaPoolResultFP    = "ipcchan.pool.result.fingerprint"
)

// poolConsumer is the durable consumer every worker of a pool shares, and the
// one a Pool reads its results with.
const poolConsumer = "work"

// Pool defaults.
const (
	// DefaultPoolAckWait is how long a job taken by a worker that died
	// stays held before another worker gets it, unless WithAckWait.
	DefaultPoolAckWait = 5 * time.Second
	// DefaultPoolMaxPending bounds the jobs handed out to workers and not
	// yet answered, across all workers of a pool, unless WithMaxPending.
	DefaultPoolMaxPending = 1024
)

// maxPoolName is the longest pool name: "<pool>-results-<22-char id>" must
// be a channel name (64 characters at most).
const maxPoolName = 64 - len("-results-") - 22

// JobError is the error Pool.Do returns when the worker's work function
// returned an error for the job: its text, carried back by the result.
type JobError struct {
	ID  string // the job's id
	Msg string // the work function's error, as text
}

// Error returns the work function's error text, with the job's id.
func (e *JobError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return "natsjs: job " + e.ID + " failed: " + e.Msg
}

type jobIDKey struct{}

// JobID returns the id of the job whose work function got ctx, and whether
// there is one. A job may run more than once (when the worker running it
// dies, or the Serve running it is stopped, another worker runs it again),
// so work that has effects outside can key them on this id.
func JobID(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(jobIDKey{}).(string)
	return id, ok
}

// A PoolOption configures Serve and NewPool. Every Serve and Pool of a
// pool must be given the same WithChannelConfig, WithAckWait and
// WithMaxPending (they describe the shared stream and consumer; the last
// to open it sets the consumer's).
type PoolOption interface{ applyPool(*poolConfig) }

type poolOptionFunc func(*poolConfig)

func (f poolOptionFunc) applyPool(c *poolConfig) { f(c) }

type poolConfig struct {
	channel     ChannelConfig
	ackWait     time.Duration
	maxPending  int
	concurrency int
}

// WithChannelConfig sets the configuration of the pool's channels (the jobs
// channel and each Pool's results channel): Replicas, the bounds (a full
// jobs channel makes Do wait; a full results channel makes workers wait),
// storage, and the de-duplication window, which must stay longer than
// AckWait plus the longest job for a worker's crash never to produce a
// second result. Mode is ignored: both are work queues.
func WithChannelConfig(cfg ChannelConfig) PoolOption {
	return poolOptionFunc(func(c *poolConfig) { c.channel = cfg })
}

// WithAckWait sets how long a job taken by a worker that died stays held
// before another worker gets it (default DefaultPoolAckWait). A live
// worker keeps its job held for as long as the work takes.
func WithAckWait(d time.Duration) PoolOption {
	return poolOptionFunc(func(c *poolConfig) { c.ackWait = d })
}

// WithMaxPending bounds the jobs handed out to workers and not yet
// answered, across the whole pool (default DefaultPoolMaxPending).
func WithMaxPending(n int) PoolOption {
	return poolOptionFunc(func(c *poolConfig) { c.maxPending = n })
}

// WithConcurrency sets how many jobs one Serve runs at once, each in a
// goroutine of its own (default 1). NewPool ignores it.
func WithConcurrency(n int) PoolOption {
	return poolOptionFunc(func(c *poolConfig) { c.concurrency = n })
}

func newPoolConfig(pool string, opts []PoolOption) (*poolConfig, error) {
	c := &poolConfig{ackWait: DefaultPoolAckWait, maxPending: DefaultPoolMaxPending, concurrency: 1}
	for _, o := range opts {
		if o != nil {
			o.applyPool(c)
		}
	}
	c.channel.Mode = WorkQueue
	switch {
	case len(pool) > maxPoolName || !validName(pool):
		return nil, fmt.Errorf("%w: pool name %q: use 1 to %d characters of [A-Za-z0-9_-] (its results channels add 31)", ipcchan.ErrOption, pool, maxPoolName)
	case c.ackWait <= 0:
		return nil, fmt.Errorf("%w: WithAckWait(%v): give a positive duration", ipcchan.ErrOption, c.ackWait)
	case c.maxPending <= 0:
		return nil, fmt.Errorf("%w: WithMaxPending(%d): give at least 1", ipcchan.ErrOption, c.maxPending)
	case c.concurrency <= 0:
		return nil, fmt.Errorf("%w: WithConcurrency(%d): give at least 1", ipcchan.ErrOption, c.concurrency)
	}
	return c, nil
}

// validName reports whether name is a channel name.
func validName(name string) bool { return checkName("channel", name) == nil }

func jobsChannel(pool string) string { return pool + "-jobs" }

// poolTypes is what a pool's channels record about J and R.
type poolTypes struct {
	jobCodec, resCodec string
	job, res           reflect.Type
}

func metaOf(codecName string, t reflect.Type) channelMeta {
	return channelMeta{codec: codecName, typ: ipcchan.TypeDescription(t), fingerprint: ipcchan.Fingerprint(t), mode: WorkQueue}
}

func (pt poolTypes) jobMeta() channelMeta { return metaOf(pt.jobCodec, pt.job) }
func (pt poolTypes) resMeta() channelMeta { return metaOf(pt.resCodec, pt.res) }

func (pt poolTypes) metadata() map[string]string {
	return map[string]string{
		metaPoolResultCodec: pt.resCodec,
		metaPoolResultType:  ipcchan.TypeDescription(pt.res),
		metaPoolResultFP:    fmt.Sprintf("%016x", ipcchan.Fingerprint(pt.res)),
	}
}

// checkResultType refuses a pool whose recorded result type or codec
// differs from this end's.
func (pt poolTypes) checkResultType(md map[string]string) error {
	want := pt.metadata()
	if fp := md[metaPoolResultFP]; fp != "" && fp != want[metaPoolResultFP] {
		return fmt.Errorf("%w: the pool's results are %s, this end's are %s: give every Serve and Pool of a pool the same result type", ipcchan.ErrHandshake, md[metaPoolResultType], want[metaPoolResultType])
	}
	if c := md[metaPoolResultCodec]; c != "" && c != pt.resCodec {
		return fmt.Errorf("%w: the pool's results are encoded with codec %q, this end's with %q", ipcchan.ErrHandshake, c, pt.resCodec)
	}
	return nil
}

// openJobs opens the pool's jobs channel (creating it if missing, checking
// it if present) and the workers' consumer of it, which records the result
// type.
func openJobs(ctx context.Context, c *Conn, pool string, cfg *poolConfig, pt poolTypes) (jetstream.Consumer, error) {
	name := jobsChannel(pool)
	if _, err := openStream(ctx, c, name, cfg.channel, pt.jobMeta()); err != nil {
		return nil, err
	}
	cons, err := jsRetry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return c.js.Consumer(ctx, streamName(name), poolConsumer)
	})
	switch {
	case err == nil:
		if err := pt.checkResultType(cons.CachedInfo().Config.Metadata); err != nil {
			return nil, err
		}
	case !errors.Is(err, jetstream.ErrConsumerNotFound):
		return nil, err
	}
	return openPoolConsumer(ctx, c, name, cfg, pt.metadata())
}

func openPoolConsumer(ctx context.Context, c *Conn, name string, cfg *poolConfig, md map[string]string) (jetstream.Consumer, error) {
	return jsRetry(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
		return c.js.CreateOrUpdateConsumer(ctx, streamName(name), jetstream.ConsumerConfig{
			Durable:       poolConsumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       cfg.ackWait,
			MaxAckPending: cfg.maxPending,
			FilterSubject: valueSubject(name),
			Metadata:      md,
		})
	})
}

// Pool submits jobs to the workers of a pool (processes running Serve with
// the same pool name, on this host or any other of the cluster) and gets
// their results. It is safe for concurrent use; Close it when done.
type Pool[J, R any] struct {
	c       *Conn
	pool    string
	id      string // 22-character NUID: the job ids' prefix
	results string // this Pool's results channel
	jobSubj string
	jc      codec.Codec[J]
	rc      codec.Codec[R]
	seq     atomic.Uint64

	mu      sync.Mutex
	waiting map[string]chan result[R]
	closed  bool

	cancel context.CancelFunc
	done   chan struct{} // closed when the result reader has returned
	once   sync.Once
	err    error
}

type result[R any] struct {
	v   R
	err error
}

// NewPool opens the pool's jobs channel and a results channel of this
// Pool's own, and starts reading results. J and R are encoded with
// codec.Default; every Serve and Pool of a pool must agree on them (a
// mismatch is refused with an error wrapping ipcchan.ErrHandshake). Errors
// are *ipcchan.OpError.
func NewPool[J, R any](ctx context.Context, c *Conn, pool string, opts ...PoolOption) (*Pool[J, R], error) {
	p, err := newPool[J, R](ctx, c, pool, opts)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: "natsjs pool " + pool, Err: err}
	}
	return p, nil
}

func newPool[J, R any](ctx context.Context, c *Conn, pool string, opts []PoolOption) (*Pool[J, R], error) {
	if c == nil {
		return nil, errors.New("natsjs: nil *Conn")
	}
	cfg, err := newPoolConfig(pool, opts)
	if err != nil {
		return nil, err
	}
	pt, jc, rc, err := poolCodecs[J, R]()
	if err != nil {
		return nil, err
	}
	if _, err := openJobs(ctx, c, pool, cfg, pt); err != nil {
		return nil, err
	}
	p := &Pool[J, R]{
		c: c, pool: pool, id: nuid.Next(), jobSubj: valueSubject(jobsChannel(pool)),
		jc: jc, rc: rc, waiting: map[string]chan result[R]{}, done: make(chan struct{}),
	}
	p.results = pool + "-results-" + p.id
	if _, err := openStream(ctx, c, p.results, cfg.channel, pt.resMeta()); err != nil {
		return nil, err
	}
	cons, err := openPoolConsumer(ctx, c, p.results, cfg, nil)
	if err != nil {
		c.DeleteChannel(context.WithoutCancel(ctx), p.results)
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go p.readResults(rctx, cons)
	return p, nil
}

func poolCodecs[J, R any]() (poolTypes, codec.Codec[J], codec.Codec[R], error) {
	jc, err := codec.Default[J]()
	if err != nil {
		return poolTypes{}, nil, nil, err
	}
	rc, err := codec.Default[R]()
	if err != nil {
		return poolTypes{}, nil, nil, err
	}
	return poolTypes{jobCodec: jc.Name(), resCodec: rc.Name(), job: reflect.TypeFor[J](), res: reflect.TypeFor[R]()}, jc, rc, nil
}

// Do submits job and waits for its result: the work function's value, or
// a *JobError with its error's text. It returns ctx's error if ctx ends
// first; the job may still run (it may already be stored, or running), and
// its result is then dropped. It returns an error wrapping os.ErrClosed
// after Close. Safe for concurrent use. Errors other than *JobError are
// *ipcchan.OpError.
func (p *Pool[J, R]) Do(ctx context.Context, job J) (R, error) {
	var zero R
	id := p.id + "." + strconv.FormatUint(p.seq.Add(1), 10)
	ch := make(chan result[R], 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return zero, p.wrap(errClosed)
	}
	p.waiting[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.waiting, id)
		p.mu.Unlock()
	}()

	data, err := p.jc.Append(nil, job)
	if err != nil {
		return zero, p.wrap(err)
	}
	m := &nats.Msg{Subject: p.jobSubj, Data: data, Header: nats.Header{}}
	m.Header.Set(hdrJob, id)
	m.Header.Set(hdrReply, p.results)
	if err := publishRetry(ctx, p.c, jobsChannel(p.pool), m, id); err != nil {
		return zero, p.wrap(err)
	}
	select {
	case r := <-ch:
		if r.err != nil {
			var je *JobError
			if errors.As(r.err, &je) {
				return zero, r.err
			}
			return zero, p.wrap(r.err)
		}
		return r.v, nil
	case <-ctx.Done():
		return zero, p.wrap(ctx.Err())
	case <-p.done:
		return zero, p.wrap(errClosed)
	}
}

var errClosed = fmt.Errorf("natsjs: pool closed: %w", os.ErrClosed)

func (p *Pool[J, R]) wrap(err error) error {
	return &ipcchan.OpError{Op: "do", Endpoint: "natsjs pool " + p.pool, Err: err}
}

// readResults hands each result to the Do waiting for it and acknowledges
// it; a result nobody waits for (its Do was cancelled) is dropped.
func (p *Pool[J, R]) readResults(ctx context.Context, cons jetstream.Consumer) {
	defer close(p.done)
	backoff := newBackoff()
	for ctx.Err() == nil {
		batch, err := cons.Fetch(64, jetstream.FetchContext(ctx))
		if err != nil {
			backoff.wait(ctx)
			continue
		}
		got := false
		for m := range batch.Messages() {
			got = true
			p.deliver(m)
			// A plain ack: if it is lost the result comes again and,
			// its Do answered, is dropped.
			m.Ack()
		}
		if batch.Error() != nil && !got {
			backoff.wait(ctx)
			continue
		}
		backoff.reset()
	}
}

func (p *Pool[J, R]) deliver(m jetstream.Msg) {
	id := m.Headers().Get(hdrJob)
	p.mu.Lock()
	ch := p.waiting[id]
	delete(p.waiting, id)
	p.mu.Unlock()
	if ch == nil {
		return // its Do was cancelled, or a late duplicate
	}
	var r result[R]
	if msg := m.Headers().Get(hdrError); msg != "" {
		r.err = &JobError{ID: id, Msg: msg}
	} else if err := p.rc.Decode(m.Data(), &r.v); err != nil {
		r.err = fmt.Errorf("%w: result of job %s: %w", ErrCorruptResult, id, err)
	}
	ch <- r
}

// ErrCorruptResult is wrapped by the error Do returns when a result cannot
// be decoded as R (a worker built with another R and codec than the Pool).
var ErrCorruptResult = errors.New("natsjs: undecodable result")

// Close stops reading results, fails the Do calls still waiting with an
// error wrapping os.ErrClosed, and deletes this Pool's results channel
// (results still to come are then dropped by the workers). The jobs
// channel stays: jobs already submitted are still run. Close is idempotent
// and returns the deletion's error.
func (p *Pool[J, R]) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		<-p.done
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.c.DeleteChannel(ctx, p.results); err != nil {
			p.err = &ipcchan.OpError{Op: "close", Endpoint: "natsjs pool " + p.pool, Err: err}
		}
	})
	return p.err
}
