package natsjs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Serve makes this process a worker of pool: it takes jobs from the pool's
// jobs channel (submitted by any Pool of that name, on any host of the
// cluster), runs work on each (WithConcurrency at once, default 1) and
// sends its result to the Pool that submitted it. It returns nil once ctx
// ends and the jobs in hand are handed back (a job whose work function was
// cancelled goes to another worker), or an error, *ipcchan.OpError, if the
// pool cannot be opened (a J or R that differs from the pool's wraps
// ipcchan.ErrHandshake) or c is closed.
//
// Each job's result is delivered exactly once, across the crash of any
// worker: the worker acknowledges a job only after its result is stored,
// with the job's id as Nats-Msg-Id, so a job whose worker died after
// answering and before acknowledging is run again by another worker whose
// result the stream drops as a duplicate. The work function itself may
// therefore run more than once for a job (JobID gives the id to key side
// effects on). A job whose value cannot be decoded as J is answered with a
// *JobError; a job whose Pool has closed is run and its result dropped.
func Serve[J, R any](ctx context.Context, c *Conn, pool string, work func(context.Context, J) (R, error), opts ...PoolOption) error {
	if err := serve(ctx, c, pool, work, opts); err != nil {
		return &ipcchan.OpError{Op: "serve", Endpoint: "natsjs pool " + pool, Err: err}
	}
	return nil
}

func serve[J, R any](ctx context.Context, c *Conn, pool string, work func(context.Context, J) (R, error), opts []PoolOption) error {
	if c == nil || work == nil {
		return errors.New("natsjs: Serve needs a *Conn and a work function")
	}
	cfg, err := newPoolConfig(pool, opts)
	if err != nil {
		return err
	}
	pt, jc, rc, err := poolCodecs[J, R]()
	if err != nil {
		return err
	}
	cons, err := openJobs(ctx, c, pool, cfg, pt)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w := &worker[J, R]{c: c, cons: cons, work: work, jc: jc, rc: rc, ackWait: cfg.ackWait}
	var wg sync.WaitGroup
	errs := make(chan error, cfg.concurrency)
	for range cfg.concurrency {
		wg.Go(func() {
			if err := w.run(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// worker takes jobs with the jetstream consumer itself rather than a
// natsjs Receiver: a Receiver acknowledges a value before Recv returns it,
// and a worker must acknowledge a job only after its result is stored (so
// that its crash in between makes another worker answer it, and the
// results stream drop the second answer); it also needs the job's headers
// (its id and where to answer) and to keep the job held while it works.
type worker[J, R any] struct {
	c       *Conn
	cons    jetstream.Consumer
	work    func(context.Context, J) (R, error)
	jc      codec.Codec[J]
	rc      codec.Codec[R]
	ackWait time.Duration
}

func (w *worker[J, R]) run(ctx context.Context) error {
	b := newBackoff()
	for ctx.Err() == nil {
		m, err := w.cons.Next(jetstream.FetchContext(ctx))
		switch {
		case err == nil:
			b.reset()
			w.handle(ctx, m)
		case ctx.Err() != nil:
		case errors.Is(err, nats.ErrConnectionClosed):
			return err
		default: // a pull that timed out, a lost connection, a failover
			b.wait(ctx)
		}
	}
	return nil
}

// handle runs one job and answers it, then acknowledges it.
func (w *worker[J, R]) handle(ctx context.Context, m jetstream.Msg) {
	if ctx.Err() != nil {
		m.Nak() // taken as Serve was stopped: to another worker at once
		return
	}
	id, reply := m.Headers().Get(hdrJob), m.Headers().Get(hdrReply)
	if id == "" || !validName(reply) {
		m.TermWithReason("not a natsjs pool job: no " + hdrJob + " or " + hdrReply + " header")
		return
	}
	res := &nats.Msg{Subject: valueSubject(reply), Header: nats.Header{}}
	res.Header.Set(hdrJob, id)
	var j J
	if err := w.jc.Decode(m.Data(), &j); err != nil {
		res.Header.Set(hdrError, fmt.Sprintf("the job cannot be decoded: %v (submit it with a Pool of the same job type)", err))
	} else {
		stop := w.holdWhileWorking(m)
		r, err := w.work(context.WithValue(ctx, jobIDKey{}, id), j)
		stop()
		if ctx.Err() != nil {
			m.Nak() // stopped mid-job: another worker runs it
			return
		}
		if err != nil {
			msg := err.Error()
			if msg == "" {
				msg = fmt.Sprintf("%T with an empty message", err)
			}
			res.Header.Set(hdrError, msg)
		} else if res.Data, err = w.rc.Append(nil, r); err != nil {
			res.Header.Set(hdrError, "the result cannot be encoded: "+err.Error())
		}
	}
	switch err := publishRetry(ctx, w.c, reply, res, id); {
	case err == nil:
	case ctx.Err() != nil:
		m.Nak()
		return
	default:
		// The Pool closed (its results channel is gone), or the result
		// can never be stored (too large: say so instead).
		if !errors.Is(err, errChannelGone) {
			res.Data = nil
			res.Header.Set(hdrError, "the result cannot be sent: "+err.Error())
			publishRetry(ctx, w.c, reply, res, id)
		}
	}
	if afterResultHook != nil {
		afterResultHook(id)
	}
	// Acknowledged only now that the result is stored; not bounded by ctx
	// (the result is out: a stopped Serve still lets it count), but by
	// AckWait, after which the job goes to another worker anyway and its
	// result is dropped as a duplicate.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.ackWait)
	defer cancel()
	b := newBackoff()
	for m.DoubleAck(actx) != nil && actx.Err() == nil {
		b.wait(actx)
	}
}

// afterResultHook, if set (by tests), runs between a result's store and its
// job's acknowledgement.
var afterResultHook func(id string)

// holdWhileWorking tells the server the job is still being worked on every
// half AckWait, so that a long job is not handed to another worker while
// this one is alive.
func (w *worker[J, R]) holdWhileWorking(m jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(w.ackWait / 2)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				m.InProgress()
			case <-done:
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
