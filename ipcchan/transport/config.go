package transport

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/ipcchan/go/codec"
)

// An Option configures an endpoint, a Sender or a Receiver. Programs make
// them with package ipcchan's With functions (ipcchan.WithCodec, ...), which
// are this package's functions of the same names; a constructor reads them
// with NewConfig.
type Option struct {
	name  OptionName
	apply func(*Config)
	err   error // a value out of range, reported by NewConfig
}

// Name says which option o is.
func (o Option) Name() OptionName { return o.name }

// OptionName names an option. Names are bits, so that a set of them (the
// options an endpoint honours) is their union.
type OptionName uint32

// The options.
const (
	OptCodec OptionName = 1 << iota
	OptTag
	OptMaxMessageSize
	OptSendBuffer
	OptLinger
	OptAtomicWrites
	OptPerm
	OptSenders
	OptHandshake
	OptFraming
	OptForeignPeer
	OptPeerCheck
	OptConnMemory
	OptRecvFiles
	OptTrustedOwners
	OptWaitForCreate
	OptSubscribers
	OptLossy
	OptReplay
	optEnd
)

var optionNames = [...]string{
	"WithCodec", "WithTag", "WithMaxMessageSize", "WithSendBuffer", "WithLinger",
	"WithAtomicWrites", "WithPerm", "WithSenders", "WithHandshake", "WithFraming",
	"WithForeignPeer", "WithPeerCheck", "WithConnMemory", "WithRecvFiles", "WithTrustedOwners",
	"WithWaitForCreate", "WithSubscribers", "WithLossy", "WithReplay",
}

// What each option is for, said when it is refused.
var optionUse = [...]string{
	"it chooses a typed channel's codec",
	"it sets the tag a Sender sends with",
	"it bounds a channel's messages",
	"it sizes a byte-stream sender's buffer",
	"it bounds how long a sender's Close waits",
	"it keeps a byte-stream sender's frames within PIPE_BUF",
	"it sets the mode of an object an endpoint creates",
	"it tells a receiver with end-of-stream markers how many senders to wait for",
	"it turns a channel's hello on or off",
	"it cuts a byte stream into another program's records",
	"it says the peer is not ipcchan",
	"it vets the peers of Unix sockets",
	"it bounds what a listener's connections hold",
	"it lets a Unix stream socket's receiver take files",
	"it names the users whose lock files may be opened",
	"it makes an open of an existing object wait until a peer creates it",
	"it bounds the subscribers of a broadcast its creator formats",
	"it makes a broadcast its creator formats drop values for slow subscribers",
	"it starts a broadcast's subscriber at the oldest value still held",
}

// String returns the option's name as a program writes it:
// "ipcchan.WithPerm".
func (n OptionName) String() string {
	var parts []string
	for i, name := range optionNames {
		if n&(1<<i) != 0 {
			parts = append(parts, "ipcchan."+name)
		}
	}
	if len(parts) == 0 {
		return "no option"
	}
	return strings.Join(parts, ", ")
}

// Sets of options, for the constructors that honour them.
const (
	// ReceiverOptions are those a typed Receiver honours itself.
	ReceiverOptions = OptCodec | OptMaxMessageSize | OptHandshake | OptForeignPeer
	// SenderOptions are those a typed Sender honours itself.
	SenderOptions = ReceiverOptions | OptTag
)

// Defaults of the options not given.
const (
	DefaultMaxMessageSize = codec.DefaultMaxFrameSize
	DefaultSendBuffer     = 64 << 10
	DefaultLinger         = 5 * time.Second
	DefaultPerm           = os.FileMode(0o600)

	// DefaultConnMemory is the receive memory a listener's connections
	// share beyond their base (see Config.ConnMemory): room for two
	// messages of the default largest size (16 MiB) at once, and for many
	// smaller ones, while 200 connections stalled inside maximal messages
	// keep a server well under 100 MB.
	DefaultConnMemory = 32 << 20

	// DefaultRecvFiles is one message's worth of descriptors, the most the
	// kernel passes in one (SCM_MAX_FD).
	DefaultRecvFiles = 253

	// DefaultSubscribers is how many subscribers a broadcast has room for
	// unless WithSubscribers says otherwise; MaxSubscribers is the most.
	DefaultSubscribers = 16
	MaxSubscribers     = 4096
)

// Config is what the options given to a constructor set, read through its
// methods, which fill in the defaults.
type Config struct {
	opts  []Option
	given OptionName

	codec        any
	tag          uint32
	maxMessage   int
	sendBuffer   int
	linger       time.Duration
	atomic       bool
	perm         os.FileMode
	senders      int
	handshake    bool
	framing      codec.Framing
	foreign      bool
	peerCheck    func(PeerCred) error
	connMemory   int
	recvFiles    int
	trustedUsers []int
	waitCreate   context.Context
	subscribers  int
	lossy        bool
	replay       bool
}

// NewConfig applies opts for the constructor of endpoint (a description:
// "a pipe", "OpenMQSender"), which honours the options in allowed. It
// returns an error wrapping ErrOption, naming the option, for one not in
// allowed or given a value out of its range, and for WithHandshake(true)
// with WithForeignPeer, which says there is no hello. The zero Option is
// ignored; an option given more than once takes its last value
// (WithTrustedOwners adds up).
func NewConfig(endpoint string, allowed OptionName, opts []Option) (*Config, error) {
	c := &Config{opts: opts}
	for _, o := range opts {
		switch {
		case o.name == 0:
			continue // the zero Option
		case o.err != nil:
			return nil, fmt.Errorf("%w: %s: %v", ErrOption, o.name, o.err)
		case o.name&allowed == 0:
			return nil, fmt.Errorf("%w: %s does not apply to %s (%s)", ErrOption, o.name, endpoint, optionUse[indexOf(o.name)])
		}
		c.given |= o.name
		o.apply(c)
	}
	if c.foreign && c.Given(OptHandshake) && c.handshake {
		return nil, fmt.Errorf("%w: %s(true) contradicts %s: a peer that is not ipcchan says no hello (drop one of them)", ErrOption, OptHandshake, OptForeignPeer)
	}
	return c, nil
}

func indexOf(n OptionName) int {
	for i := range optionNames {
		if n == 1<<i {
			return i
		}
	}
	return 0
}

// Given reports whether an option named name was given.
func (c *Config) Given(name OptionName) bool { return c.given&name != 0 }

// Options returns the options given whose names are in names, in order:
// what a constructor passes on to ipcchan.NewSender (SenderOptions) or
// ipcchan.NewReceiver (ReceiverOptions).
func (c *Config) Options(names OptionName) []Option {
	var out []Option
	for _, o := range c.opts {
		if o.name&names != 0 {
			out = append(out, o)
		}
	}
	return out
}

// Codec returns the codec given (a codec.Codec[T] of the channel's element
// type), or nil for codec.Default.
func (c *Config) Codec() any { return c.codec }

// Tag returns the tag a Sender sends with by default (0).
func (c *Config) Tag() uint32 { return c.tag }

// MaxMessageSize returns the largest message a channel carries
// (DefaultMaxMessageSize).
func (c *Config) MaxMessageSize() int {
	if !c.Given(OptMaxMessageSize) {
		return DefaultMaxMessageSize
	}
	return c.maxMessage
}

// SendBuffer returns the bytes a byte-stream sender may hold in user space
// while the kernel is full (DefaultSendBuffer); 0 means none: a Send
// returns once its frame is in the kernel.
func (c *Config) SendBuffer() int {
	if !c.Given(OptSendBuffer) {
		return DefaultSendBuffer
	}
	return c.sendBuffer
}

// Linger returns how long a sender's Close waits to flush what it holds
// and to post its end-of-stream marker (DefaultLinger); 0 means it does
// not wait: what cannot go at once is dropped, and Close says so.
func (c *Config) Linger() time.Duration {
	if !c.Given(OptLinger) {
		return DefaultLinger
	}
	return c.linger
}

// AtomicWrites reports whether a byte-stream sender keeps every frame
// within one write of at most PIPE_BUF bytes; def is the endpoint's
// default.
func (c *Config) AtomicWrites(def bool) bool {
	if !c.Given(OptAtomicWrites) {
		return def
	}
	return c.atomic
}

// Perm returns the mode of objects an endpoint creates (DefaultPerm).
func (c *Config) Perm() os.FileMode {
	if !c.Given(OptPerm) {
		return DefaultPerm
	}
	return c.perm
}

// Senders returns how many end-of-stream markers a receiver waits for (1).
func (c *Config) Senders() int {
	if !c.Given(OptSenders) {
		return 1
	}
	return c.senders
}

// Handshake reports whether a channel says hello; def is the transport's
// default. A foreign peer (ForeignPeer) never does.
func (c *Config) Handshake(def bool) bool {
	switch {
	case c.foreign:
		return false
	case c.Given(OptHandshake):
		return c.handshake
	}
	return def
}

// Framing returns how a byte stream is cut into messages (codec.Frames).
func (c *Config) Framing() codec.Framing {
	if c.framing == nil {
		return codec.Frames
	}
	return c.framing
}

// ForeignPeer reports whether the peer is not ipcchan: no hello, and on
// datagrams and queues exactly the codec's bytes — no tag word, no
// end-of-stream markers, no escapes.
func (c *Config) ForeignPeer() bool { return c.foreign }

// PeerCheck returns the check of Unix socket peers given, or nil for the
// endpoint's default.
func (c *Config) PeerCheck() func(PeerCred) error { return c.peerCheck }

// ConnMemory returns the receive memory a listener's connections may hold
// together beyond their base: DefaultConnMemory, or one message of the
// largest size if that is more.
func (c *Config) ConnMemory() int {
	if c.Given(OptConnMemory) {
		return c.connMemory
	}
	n := c.Framing().RecordLen(c.MaxMessageSize())
	if n < 0 {
		n = math.MaxInt // overflowed
	}
	return max(DefaultConnMemory, n)
}

// RecvFiles returns how many descriptors a Unix stream socket's receiver
// may hold ahead of the values that claim them; 0 means it takes none.
func (c *Config) RecvFiles() int { return c.recvFiles }

// Trusts reports whether an endpoint may open a file that uid owns as its
// own: this process's effective user's, or one given with
// ipcchan.WithTrustedOwners.
func (c *Config) Trusts(uid int) bool {
	if uid == os.Geteuid() {
		return true
	}
	for _, u := range c.trustedUsers {
		if u == uid {
			return true
		}
	}
	return false
}

// WaitForCreate returns the context given with WithWaitForCreate, which
// bounds an open's wait for its object to be created, or nil if the open
// is not to wait.
func (c *Config) WaitForCreate() context.Context { return c.waitCreate }

// Subscribers returns how many subscribers a broadcast has room for
// (DefaultSubscribers).
func (c *Config) Subscribers() int {
	if !c.Given(OptSubscribers) {
		return DefaultSubscribers
	}
	return c.subscribers
}

// Lossy reports whether a broadcast drops the oldest values for a
// subscriber that falls behind, rather than making its publishers wait.
func (c *Config) Lossy() bool { return c.lossy }

// Replay reports whether a broadcast's subscriber starts at the oldest
// value the broadcast still holds rather than at the next one published.
func (c *Config) Replay() bool { return c.replay }
