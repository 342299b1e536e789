package natsjs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

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

// The keys of the stream metadata a channel records (PROTOCOL.md §15).
const (
	metaCodec       = "ipcchan.codec"
	metaType        = "ipcchan.type"
	metaFingerprint = "ipcchan.fingerprint"
	metaMode        = "ipcchan.mode"
)

// checkName refuses a channel or consumer name outside 1–64 characters of
// [A-Za-z0-9_-]: the name becomes a subject token and a stream name.
func checkName(what, name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("%w: %s %q: want 1 to 64 characters of A-Z a-z 0-9 _ -", errBadName, what, name)
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '_' || b == '-') {
			return fmt.Errorf("%w: %s %q: character %q at %d: want only A-Z a-z 0-9 _ - (1 to 64)", errBadName, what, name, b, i)
		}
	}
	return nil
}

// errBadName is wrapped by the error for a channel or consumer name that
// cannot be used; it wraps os.ErrInvalid.
var errBadName = fmt.Errorf("natsjs: bad name: %w", os.ErrInvalid)

func streamName(name string) string   { return "IPCCHAN_" + name }
func valueSubject(name string) string { return "ipcchan." + name + ".v" }
func endSubjects(name string) string  { return "ipcchan." + name + ".end.*" }
func endSubject(name, senderID string) string {
	return "ipcchan." + name + ".end." + senderID
}

// channelMeta is what a channel's stream records about its values.
type channelMeta struct {
	codec       string
	typ         string
	fingerprint uint64
	mode        Mode
}

func (m channelMeta) metadata() map[string]string {
	return map[string]string{
		metaCodec:       m.codec,
		metaType:        m.typ,
		metaFingerprint: fmt.Sprintf("%016x", m.fingerprint),
		metaMode:        m.mode.String(),
	}
}

// parseMeta reads the metadata a stream recorded (another party wrote it).
func parseMeta(md map[string]string) (channelMeta, error) {
	var m channelMeta
	var ok bool
	if m.codec, ok = md[metaCodec]; !ok || m.codec == "" {
		return m, fmt.Errorf("the stream records no %s: it was not made by ipcchan (delete it or choose another channel name)", metaCodec)
	}
	m.typ = md[metaType]
	fp := md[metaFingerprint]
	if len(fp) != 16 {
		return m, fmt.Errorf("the stream's %s %q is not 16 hex digits", metaFingerprint, fp)
	}
	v, err := strconv.ParseUint(fp, 16, 64)
	if err != nil {
		return m, fmt.Errorf("the stream's %s %q is not 16 hex digits", metaFingerprint, fp)
	}
	m.fingerprint = v
	switch md[metaMode] {
	case "workqueue":
		m.mode = WorkQueue
	case "broadcast":
		m.mode = Broadcast
	default:
		return m, fmt.Errorf("the stream's %s %q is neither workqueue nor broadcast", metaMode, md[metaMode])
	}
	return m, nil
}

// check compares what an end expects (want) with what the stream recorded.
func (m channelMeta) check(want channelMeta) error {
	switch {
	case m.mode != want.mode:
		return fmt.Errorf("%w: the channel is a %s, this end opens a %s", ipcchan.ErrHandshake, m.mode, want.mode)
	case m.codec != want.codec:
		return fmt.Errorf("%w: the channel's values are encoded with codec %q, this end uses %q", ipcchan.ErrHandshake, m.codec, want.codec)
	case m.fingerprint != want.fingerprint:
		return fmt.Errorf("%w: the channel carries another element type (%s, fingerprint %016x; this end: %s, %016x)",
			ipcchan.ErrHandshake, m.typ, m.fingerprint, want.typ, want.fingerprint)
	}
	return nil
}

func metaFor[T any](cfg *transport.Config, mode Mode) (channelMeta, error) {
	var name string
	if c := cfg.Codec(); c != nil {
		cd, ok := c.(codec.Codec[T])
		if !ok {
			return channelMeta{}, fmt.Errorf("%w: %s: codec %T does not encode %v", ipcchan.ErrOption, transport.OptCodec, c, reflect.TypeFor[T]())
		}
		name = cd.Name()
	} else {
		cd, err := codec.Default[T]()
		if err != nil {
			return channelMeta{}, err
		}
		name = cd.Name()
	}
	t := reflect.TypeFor[T]()
	return channelMeta{codec: name, typ: ipcchan.TypeDescription(t), fingerprint: ipcchan.Fingerprint(t), mode: mode}, nil
}

// openStream opens the stream of channel name, creating it if missing,
// and checks what it records against want.
func openStream(ctx context.Context, c *Conn, name string, cfg ChannelConfig, want channelMeta) (jetstream.Stream, error) {
	if cfg.Mode != WorkQueue && cfg.Mode != Broadcast {
		return nil, fmt.Errorf("%w: ChannelConfig.Mode %d: want natsjs.WorkQueue or natsjs.Broadcast", ipcchan.ErrOption, int(cfg.Mode))
	}
	if cfg.Replicas < 0 || cfg.MaxMsgs < 0 || cfg.MaxBytes < 0 || cfg.Duplicates < 0 {
		return nil, fmt.Errorf("%w: ChannelConfig: Replicas, MaxMsgs, MaxBytes and Duplicates must not be negative", ipcchan.ErrOption)
	}
	sc := jetstream.StreamConfig{
		Name:       streamName(name),
		Subjects:   []string{valueSubject(name), endSubjects(name)},
		Retention:  jetstream.WorkQueuePolicy,
		Discard:    jetstream.DiscardNew,
		MaxMsgs:    cfg.MaxMsgs,
		MaxBytes:   cfg.MaxBytes,
		Storage:    jetstream.FileStorage,
		Replicas:   max(cfg.Replicas, 1),
		Duplicates: cfg.Duplicates,
		Metadata:   want.metadata(),
	}
	if cfg.Mode == Broadcast {
		sc.Retention = jetstream.InterestPolicy
	}
	if sc.MaxMsgs == 0 {
		sc.MaxMsgs = DefaultMaxMsgs
	}
	// The bound in values is the values' subject's: a full channel still
	// takes its senders' end markers (each on a subject of its own), so a
	// Close does not wait for a receiver to make room.
	sc.MaxMsgsPerSubject = sc.MaxMsgs
	sc.DiscardNewPerSubject = true
	sc.MaxMsgs = -1
	if sc.MaxBytes == 0 {
		sc.MaxBytes = DefaultMaxBytes
	}
	if cfg.Memory {
		sc.Storage = jetstream.MemoryStorage
	}
	for {
		s, err := c.js.Stream(ctx, sc.Name)
		if err == nil {
			got, err := parseMeta(s.CachedInfo().Config.Metadata)
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ipcchan.ErrHandshake, err)
			}
			if err := got.check(want); err != nil {
				return nil, err
			}
			if err := keepEnds(ctx, s, name, cfg.Mode); err != nil {
				return nil, err
			}
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, err
		}
		s, err = c.js.CreateStream(ctx, sc)
		if err == nil {
			if err := keepEnds(ctx, s, name, cfg.Mode); err != nil {
				return nil, err
			}
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, err
		}
		// Another end created it meanwhile: check it.
	}
}

// endKeeper is the durable consumer of a broadcast's stream that keeps
// its end markers: an interest stream removes a message no consumer is
// interested in, and the receivers' consumers filter on the values only.
// It is never pulled, so it never acknowledges them.
const endKeeper = "ipcchan-ends"

// keepEnds makes sure a broadcast's stream has its end keeper (each end
// does it at open, so the keeper is there before any end marker).
func keepEnds(ctx context.Context, s jetstream.Stream, name string, mode Mode) error {
	if mode != Broadcast {
		return nil
	}
	_, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       endKeeper,
		AckPolicy:     jetstream.AckExplicitPolicy,
		FilterSubject: endSubjects(name),
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	return err
}

// DeleteChannel deletes the channel name: its stream, every value it still
// holds, its consumers and its end markers. A channel that has ended stays
// ended until it is deleted; deleting is how a name is reused. Deleting a
// channel that does not exist returns nil. Errors are *ipcchan.OpError.
func (c *Conn) DeleteChannel(ctx context.Context, name string) error {
	if err := checkName("channel", name); err != nil {
		return &ipcchan.OpError{Op: "delete", Endpoint: "natsjs channel", Err: err}
	}
	err := c.js.DeleteStream(ctx, streamName(name))
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return &ipcchan.OpError{Op: "delete", Endpoint: endpointName(name), Err: err}
	}
	return nil
}

func endpointName(name string) string { return "natsjs channel " + name }

// NewSender opens the channel name on c (creating its stream if missing)
// and returns a Sender of T values to it. It honours ipcchan.WithCodec,
// WithMaxMessageSize, WithTag and WithLinger (how long Close tries to
// store the end marker, through a full stream or a failover; default
// 30 s), and refuses other options with an error wrapping
// ipcchan.ErrOption. An element type, codec or mode that differs
// from the ones the stream recorded is refused with an error wrapping
// ipcchan.ErrHandshake. Errors are *ipcchan.OpError. The Sender is safe
// for concurrent use as every ipcchan.Sender; each Send waits for the
// stream's acknowledgement, and its Close publishes the end marker (see
// the README for the guarantees).
func NewSender[T any](ctx context.Context, c *Conn, name string, cfg ChannelConfig, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	tx, _, err := openSender[T](ctx, c, name, cfg, opts)
	return tx, err
}

// openSender is NewSender that also returns the transport.
func openSender[T any](ctx context.Context, c *Conn, name string, cfg ChannelConfig, opts []ipcchan.Option) (*ipcchan.Sender[T], *sender, error) {
	ep := endpointName(name)
	fail := func(err error) (*ipcchan.Sender[T], *sender, error) {
		return nil, nil, &ipcchan.OpError{Op: "open", Endpoint: ep, Err: err}
	}
	if c == nil {
		return fail(errors.New("nil *natsjs.Conn: call natsjs.Connect first"))
	}
	if err := checkName("channel", name); err != nil {
		return fail(err)
	}
	tcfg, err := transport.NewConfig("a natsjs Sender", transport.OptCodec|transport.OptMaxMessageSize|transport.OptTag|transport.OptLinger, opts)
	if err != nil {
		return fail(err)
	}
	want, err := metaFor[T](tcfg, cfg.Mode)
	if err != nil {
		return fail(err)
	}
	if _, err := openStream(ctx, c, name, cfg, want); err != nil {
		return fail(err)
	}
	s := newSender(c, name)
	if tcfg.Given(transport.OptLinger) {
		s.linger = tcfg.Linger()
	}
	tx, err := ipcchan.NewSender[T](s, tcfg.Options(transport.OptCodec|transport.OptMaxMessageSize|transport.OptTag)...)
	if err != nil {
		s.abandon()
		return nil, nil, err
	}
	return tx, s, nil
}

// NewReceiver opens the channel name on c (creating its stream if missing)
// and its consumer per rcfg, and returns a Receiver of T values from it.
// It honours ipcchan.WithCodec, WithMaxMessageSize and WithSenders (the
// end markers to wait for before io.EOF, default 1), and refuses other
// options with an error wrapping ipcchan.ErrOption. An element type, codec
// or mode that differs from the stream's is refused with an error wrapping
// ipcchan.ErrHandshake. Errors are *ipcchan.OpError. A value Recv returned
// has been acknowledged: it is never delivered again. The Receiver's
// Close deletes an ephemeral broadcast subscriber's consumer; durable
// consumers stay.
func NewReceiver[T any](ctx context.Context, c *Conn, name string, cfg ChannelConfig, rcfg ReceiverConfig, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	ep := endpointName(name)
	fail := func(err error) (*ipcchan.Receiver[T], error) {
		return nil, &ipcchan.OpError{Op: "open", Endpoint: ep, Err: err}
	}
	if c == nil {
		return fail(errors.New("nil *natsjs.Conn: call natsjs.Connect first"))
	}
	if err := checkName("channel", name); err != nil {
		return fail(err)
	}
	tcfg, err := transport.NewConfig("a natsjs Receiver", transport.OptCodec|transport.OptMaxMessageSize|transport.OptSenders, opts)
	if err != nil {
		return fail(err)
	}
	if tcfg.Senders() < 1 {
		return fail(fmt.Errorf("%w: %s(%d): want at least 1", ipcchan.ErrOption, transport.OptSenders, tcfg.Senders()))
	}
	if rcfg.MaxPending < 0 || rcfg.AckWait < 0 {
		return fail(fmt.Errorf("%w: ReceiverConfig: MaxPending and AckWait must not be negative", ipcchan.ErrOption))
	}
	want, err := metaFor[T](tcfg, cfg.Mode)
	if err != nil {
		return fail(err)
	}
	if _, err := openStream(ctx, c, name, cfg, want); err != nil {
		return fail(err)
	}
	r, err := newReceiver(ctx, c, name, cfg.Mode, rcfg, tcfg)
	if err != nil {
		return fail(err)
	}
	rx, err := ipcchan.NewReceiver[T](r, tcfg.Options(transport.OptCodec|transport.OptMaxMessageSize)...)
	if err != nil {
		r.Close()
		return nil, err
	}
	return rx, nil
}
