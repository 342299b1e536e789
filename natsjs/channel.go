package natsjs

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/ipcchan/go/ipcchan"
)

var errNotYet = errors.New("natsjs: not implemented yet")

// Mode is how a channel hands out its values.
type Mode int

const (
	// WorkQueue hands each value to one receiver: receivers share one
	// durable consumer and take turns.
	WorkQueue Mode = iota
	// Broadcast hands each value to every receiver: each has its own
	// consumer.
	Broadcast
)

// String returns "workqueue" or "broadcast".
func (m Mode) String() string {
	switch m {
	case WorkQueue:
		return "workqueue"
	case Broadcast:
		return "broadcast"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// The bounds of a channel whose ChannelConfig leaves them 0.
const (
	DefaultMaxMsgs  = 1 << 16
	DefaultMaxBytes = 256 << 20
)

// ChannelConfig describes a channel: the JetStream stream behind it. Each
// end opens the channel with its config: the stream is created if missing,
// and checked if present (a Mode that differs is refused).
type ChannelConfig struct {
	Mode       Mode          // WorkQueue or Broadcast
	Replicas   int           // the stream's replicas: 0 → 1; 3 on a 3-node cluster
	MaxMsgs    int64         // the stream's bound in values; 0 → DefaultMaxMsgs (Send waits while at it)
	MaxBytes   int64         // the stream's bound in bytes; 0 → DefaultMaxBytes
	Memory     bool          // memory storage instead of file storage
	Duplicates time.Duration // the de-duplication window; 0 → 2 minutes (JetStream's default)
}

// ReceiverConfig describes a receiver's consumer.
type ReceiverConfig struct {
	// Name is the durable consumer's name. WorkQueue: shared by all
	// receivers (default "work"). Broadcast: one per subscriber, which
	// survives restarts and resumes where it was; "" makes an ephemeral
	// subscriber that starts at the next value.
	Name string
	// MaxPending bounds the values handed out and not yet acknowledged,
	// per consumer; 0 → 1, which keeps strict order across receiver
	// crashes.
	MaxPending int
	// AckWait is how long a value taken by a receiver that died stays held
	// before it is delivered again; 0 → 5 s.
	AckWait time.Duration
}

// NewSender opens the channel name on c (creating its stream if missing)
// and returns a Sender of T values to it. It honours ipcchan.WithCodec,
// WithMaxMessageSize and WithTag, and refuses other options with an error
// wrapping ipcchan.ErrOption. An element type or codec that differs from
// the one the stream recorded is refused with an error wrapping
// ipcchan.ErrHandshake. Errors are *ipcchan.OpError. The Sender is safe for
// concurrent use as every ipcchan.Sender; each Send waits for the stream's
// acknowledgement (see the package README for the guarantees).
func NewSender[T any](ctx context.Context, c *Conn, name string, cfg ChannelConfig, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	return nil, errNotYet
}

// NewReceiver opens the channel name on c (creating its stream if missing)
// and its consumer per rcfg, and returns a Receiver of T values from it.
// It honours ipcchan.WithCodec, WithMaxMessageSize and WithSenders (the
// end markers to wait for before io.EOF, default 1), and refuses other
// options with an error wrapping ipcchan.ErrOption. An element type, codec
// or mode that differs from the stream's is refused with an error wrapping
// ipcchan.ErrHandshake. Errors are *ipcchan.OpError. A value Recv returned
// is acknowledged: it is never delivered again.
func NewReceiver[T any](ctx context.Context, c *Conn, name string, cfg ChannelConfig, rcfg ReceiverConfig, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	return nil, errNotYet
}
