package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
)

// Serve is the worker's side of a pool: it takes jobs from the pool that
// started this process, calls handle for each, one at a time, and sends
// back what handle returns, until the pool closes the job stream; then it
// returns nil. J and R, and the EndpointOptions, must be the pool's (the
// handshake refuses a mismatch).
//
// The worker does not outlive the pool: if the parent process dies, ctx
// given to handle is cancelled and Serve returns an error wrapping
// ipcchan.ErrPeerGone. It returns ErrNotWorker in a process the pool did
// not start.
//
// A terminal's Ctrl-C does not reach a worker (it is in a process group of
// its own unless Options.ShareProcessGroup): the pool's process decides,
// and ends the job stream, which makes Serve return nil once the jobs in
// hand are answered.
func Serve[J, R any](ctx context.Context, handle func(context.Context, J) (R, error), opts ...ipcchan.Option) error {
	if !IsWorker() {
		return ErrNotWorker
	}
	if ctx == nil {
		return errNilContext("serve")
	}
	jc, rc, err := envelopeCodecs[J, R]()
	if err != nil {
		return err
	}
	jobs, err := endpoints.InheritReceiver[jobMsg[J]]("jobs", append(opts[:len(opts):len(opts)], ipcchan.WithCodec(jc))...)
	if err != nil {
		return err
	}
	defer jobs.Close()
	resultOpts := append(opts[:len(opts):len(opts)], ipcchan.WithCodec(rc))
	if os.Getenv(envTransport) == strconv.Itoa(int(Pipes)) {
		// One writer per results pipe: no need to keep frames within
		// PIPE_BUF, so results of any size go.
		resultOpts = append([]ipcchan.Option{ipcchan.WithAtomicWrites(false)}, resultOpts...)
	}
	results, err := endpoints.InheritSender[resultMsg[R]]("results", resultOpts...)
	if err != nil {
		return err
	}
	defer results.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	parent := os.Getppid()
	// A handler busy when the parent dies is cancelled too.
	stop, err := poller.WatchPID(parent, cancel)
	if err != nil {
		return fmt.Errorf("proc: watch the pool's process: %w", err)
	}
	defer stop()
	if err := watchWorker(parent, jobs, results); err != nil {
		return fmt.Errorf("proc: watch the pool's process: %w", err)
	}
	var msg jobMsg[J]
	for {
		if err := jobs.RecvInto(ctx, &msg); err != nil {
			if errors.Is(err, io.EOF) {
				return results.Close()
			}
			return err
		}
		v, herr := handle(ctx, msg.Job)
		r := resultMsg[R]{ID: msg.ID, Value: v, Ok: herr == nil}
		if herr != nil {
			r.Err = herr.Error()
		}
		if err := results.Send(ctx, r); err != nil {
			return err
		}
	}
}
