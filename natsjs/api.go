package natsjs

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// apiAttempt bounds one JetStream API request (or publish) of jsRetry and
// publishRetry.
//
// A cluster answers nothing at all to some requests while a stream or
// consumer has no leader: nats-server's members stay silent and leave the
// answer to the leader (server/jetstream_api.go, jsStreamInfoRequest and
// the like: "only the stream leader should answer"), and the error it may
// send instead comes only once the group has been leaderless for a while
// (isGroupLeaderless: not within 10 s of JetStream's start). A request in
// flight across a node's death is therefore simply never answered, and one
// made with the caller's context waited for that context's whole deadline
// (Pool.Do's existence check did: TestPoolCluster hung for its 3 minutes).
// Each attempt is bounded instead, and retried.
const apiAttempt = 2 * time.Second

// jsRetry calls call with a context bounded by apiAttempt until it returns
// something other than "no answer" (the attempt's deadline, a timeout) or
// "temporarily unavailable" (code 503: no leader yet), backing off from
// 1 ms to 100 ms; it returns ctx's error if ctx ends first. Requests made
// through it must be idempotent: an attempt given up may still have been
// carried out.
func jsRetry[T any](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	b := newBackoff()
	for {
		actx, cancel := context.WithTimeout(ctx, apiAttempt)
		v, err := call(actx)
		cancel()
		if err == nil || !unanswered(ctx, err) {
			return v, err
		}
		if werr := b.wait(ctx); werr != nil {
			return v, err // the last attempt's error says more than ctx's
		}
	}
}

// unanswered reports whether err, from a request made with a context
// derived from ctx, means the cluster did not answer yet (and ctx has not
// ended): a timeout, or JetStream's "temporarily unavailable" (503) other
// than "JetStream is not enabled".
func unanswered(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var api *jetstream.APIError
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return true
	case errors.As(err, &api):
		return api.Code == 503 && api.ErrorCode != jetstream.JSErrCodeJetStreamNotEnabled &&
			api.ErrorCode != jetstream.JSErrCodeJetStreamNotEnabledForAccount
	}
	return false
}
