package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var errChannelGone = errors.New("natsjs: the channel does not exist")

// publishRetry publishes m with Msg-Id id and waits for the stream's
// acknowledgement, retrying the same Msg-Id on what passes (a timeout, a
// lost connection, no responders, no leader, a full stream) until ctx ends.
//
// It returns an error wrapping errChannelGone if the channel's stream does
// not exist.
func publishRetry(ctx context.Context, c *Conn, channel string, m *nats.Msg, id string) error {
	b := newBackoff()
	for {
		// Each attempt is bounded on its own: a request in flight when
		// the stream's leader dies is never answered, and would otherwise
		// wait for ctx's deadline.
		actx, cancel := context.WithTimeout(ctx, apiAttempt)
		_, err := c.js.PublishMsg(actx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transient(err) {
			return err
		}
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			// Nobody took the publish: the stream is gone, or has no
			// leader yet. Ask once, bounded: while the stream has no
			// leader the question goes unanswered too (see apiAttempt).
			sctx, cancel := context.WithTimeout(ctx, apiAttempt)
			_, serr := c.js.Stream(sctx, streamName(channel))
			cancel()
			if errors.Is(serr, jetstream.ErrStreamNotFound) {
				return fmt.Errorf("%w: %s (was it deleted?)", errChannelGone, channel)
			}
		}
		if err := b.wait(ctx); err != nil {
			return err
		}
	}
}

func transient(err error) bool {
	var api *jetstream.APIError
	switch {
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrMaxPayload), errors.Is(err, nats.ErrBadSubject):
		return false
	case errors.As(err, &api):
		return api.Code >= 500 || strings.Contains(api.Description, "maximum")
	}
	return true
}

// backoff waits 1 ms, doubling to 100 ms.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: time.Millisecond} }

func (b *backoff) reset() { b.d = time.Millisecond }

func (b *backoff) wait(ctx context.Context) error {
	t := time.NewTimer(b.d)
	defer t.Stop()
	b.d = min(2*b.d, 100*time.Millisecond)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
