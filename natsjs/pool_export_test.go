package natsjs

import (
	"context"

	"github.com/nats-io/nats.go"
)

// SetAfterResultHook sets a function a worker calls after a job's result is
// stored and before the job is acknowledged (the window the pool's
// exactly-once answer rests on).
func SetAfterResultHook(f func(id string)) { afterResultHook = f }

// ResultsChannel returns the name of p's results channel.
func ResultsChannel[J, R any](p *Pool[J, R]) string { return p.results }

// PublishRetry is publishRetry: the pool's publish of a job or a result.
func PublishRetry(ctx context.Context, c *Conn, channel string, m *nats.Msg, id string) error {
	return publishRetry(ctx, c, channel, m, id)
}
