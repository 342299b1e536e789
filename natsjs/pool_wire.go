package natsjs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ipcchan/go/ipcchan"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Stand-ins for the channel layer's helpers (PROTOCOL.md §15), until the
// channel code lands.

var errOsClosed = os.ErrClosed

var errChannelGone = errors.New("natsjs: the channel does not exist")

func streamName(channel string) string   { return "IPCCHAN_" + channel }
func valueSubject(channel string) string { return "ipcchan." + channel + ".v" }

const (
	metaCodec = "ipcchan.codec"
	metaType  = "ipcchan.type"
	metaFP    = "ipcchan.fingerprint"
	metaMode  = "ipcchan.mode"
)

// openStream creates the stream of channel name if missing, and checks it
// if present.
func openStream(ctx context.Context, c *Conn, name string, cfg ChannelConfig, codecName string, t reflect.Type, extra map[string]string) (jetstream.Stream, error) {
	md := map[string]string{
		metaCodec: codecName,
		metaType:  ipcchan.TypeDescription(t),
		metaFP:    strconv.FormatUint(ipcchan.Fingerprint(t), 16),
		metaMode:  cfg.Mode.String(),
	}
	for k, v := range extra {
		md[k] = v
	}
	sc := jetstream.StreamConfig{
		Name:       streamName(name),
		Subjects:   []string{valueSubject(name), "ipcchan." + name + ".end.*"},
		Retention:  jetstream.WorkQueuePolicy,
		Discard:    jetstream.DiscardNew,
		MaxMsgs:    cfg.MaxMsgs,
		MaxBytes:   cfg.MaxBytes,
		Replicas:   max(cfg.Replicas, 1),
		Duplicates: cfg.Duplicates,
		Metadata:   md,
	}
	if sc.MaxMsgs == 0 {
		sc.MaxMsgs = DefaultMaxMsgs
	}
	if sc.MaxBytes == 0 {
		sc.MaxBytes = DefaultMaxBytes
	}
	if cfg.Memory {
		sc.Storage = jetstream.MemoryStorage
	}
	if cfg.Mode == Broadcast {
		sc.Retention = jetstream.InterestPolicy
	}
	st, err := c.js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		st, err = c.js.Stream(ctx, sc.Name)
		if err == nil {
			have := st.CachedInfo().Config.Metadata
			for _, k := range []string{metaFP, metaCodec, metaMode} {
				if have[k] != md[k] {
					return nil, fmt.Errorf("%w: channel %s records %s %q, this end %q", ipcchan.ErrHandshake, name, k, have[k], md[k])
				}
			}
		}
	}
	return st, err
}

// publishRetry publishes m with Msg-Id id and waits for the stream's
// acknowledgement, retrying the same Msg-Id on what passes (a timeout, a
// lost connection, no responders, no leader, a full stream) until ctx ends.
//
// It returns an error wrapping errChannelGone if the channel's stream does
// not exist.
func publishRetry(ctx context.Context, c *Conn, channel string, m *nats.Msg, id string) error {
	b := newBackoff()
	for {
		_, err := c.js.PublishMsg(ctx, m, jetstream.WithMsgID(id))
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
			if _, serr := c.js.Stream(ctx, streamName(channel)); errors.Is(serr, jetstream.ErrStreamNotFound) {
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

func deleteChannel(ctx context.Context, c *Conn, name string) error {
	err := c.js.DeleteStream(ctx, streamName(name))
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil
	}
	return err
}
