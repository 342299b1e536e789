package ipcchan

import (
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"time"

	"github.com/ipcchan/go/codec"
)

// Config is what options set. Constructors in package endpoints read the
// fields that concern their transport; each field says who honours it.
// Most programs use the With functions rather than this struct.
type Config struct {
	// Codec is a codec.Codec[T] for the channel's element type T, or nil
	// for codec.Default[T]. A codec of another element type is an error.
	Codec any

	// Tag is carried by every message a Sender sends with Send.
	Tag uint32

	// MaxMessageSize is the largest encoded message a receiver accepts and
	// a sender sends. Zero means codec.DefaultMaxFrameSize (16 MiB).
	MaxMessageSize int

	// SendBuffer is how many bytes a stream sender may hold in user space
	// while the kernel buffer is full, so that queued frames leave in one
	// write. Negative means none: Send returns only once its frame is in
	// the kernel. Zero means DefaultSendBuffer.
	SendBuffer int

	// Linger bounds how long Close waits to flush what a sender still
	// holds. Zero means DefaultLinger.
	Linger time.Duration

	// AtomicWrites, when set, makes a stream sender keep every frame
	// within one write of at most PIPE_BUF bytes, so that frames from
	// several writer processes sharing a pipe or FIFO never interleave;
	// larger messages are refused with ErrMessageTooLarge. Nil means the
	// endpoint's default (on for FIFOs, off for anonymous pipes).
	AtomicWrites *bool

	// Perm is the permission of objects an endpoint creates. Zero means
	// 0600.
	Perm os.FileMode

	// Senders is how many senders a receiver on a transport without a
	// kernel end of stream (a datagram socket, a message queue) waits for:
	// it returns io.EOF once that many end-of-stream markers arrived. Zero
	// means 1.
	Senders int

	// Handshake turns the connection handshake on or off (see
	// HandshakeTag); nil means the transport's default: on for byte
	// streams, off for message transports.
	Handshake *bool

	// Framing cuts a byte stream (pipe, FIFO, stream socket) into
	// messages; nil means codec.Frames, the wire format's header. Another
	// framing speaks an existing program's records and carries no tag, so
	// it leaves the handshake off. Message transports ignore it.
	Framing codec.Framing

	// RawMessages makes a message transport (datagram socket, POSIX or
	// SysV queue) carry exactly the codec's bytes, for a peer that is not
	// ipcchan: no tag word in datagrams, no end-of-stream markers (Close
	// sends none and a receiver ends only on its own Close, its context,
	// or a seqpacket peer's hang-up), no handshake. Queues still carry the
	// POSIX priority or SysV message type as the tag.
	RawMessages bool

	// PeerCheck, if set, vets the credentials of every peer of a Unix
	// socket, accepted or dialled, and of the sender of every datagram a
	// unixgram receiver gets; an error refuses the connection or drops the
	// datagram. Nil means the endpoint's default: on an abstract socket
	// name, which has no file permissions, only this process's user is let
	// in; on a path, the file's permission decides.
	PeerCheck func(PeerCred) error

	// ConnMemory bounds the receive-buffer memory that all the stream
	// connections accepted from one listener (endpoints.Listen) hold
	// together beyond a base of 128 KiB each. A message longer than the
	// base draws on it as its bytes arrive (never as its header
	// announces) and gives it back once delivered; while it is spent, the
	// receive waits. Zero means DefaultConnMemory, or one message of the
	// largest size (WithMaxMessageSize) if that is more; negative means no
	// bound. Other endpoints ignore it.
	ConnMemory int

	// RecvFiles, when positive, lets a receiver on a Unix stream socket
	// take the files a peer sends with values (Sender.SendFiles, read with
	// Receiver.RecvFiles), holding at most this many descriptors that
	// arrived ahead of the value that claims them; that is also the most
	// one value can carry to it. Zero means the receiver takes none: it
	// reads without a control buffer, so the kernel closes any descriptor
	// sent to it.
	RecvFiles int

	// TrustedOwners are the users, besides this process's effective uid,
	// whose files an endpoint may open as its own: a lock file
	// (endpoints.OpenLock) made by root or by a service account that
	// shares it on purpose. Files of any other user are refused, root's
	// included, so that nobody can plant a lock file for us.
	TrustedOwners []int
}

// PeerCred is the identity of the process at the other end of a Unix
// socket, as the kernel recorded it when the connection was made
// (SO_PEERCRED).
type PeerCred struct {
	PID, UID, GID int
}

// Defaults for the zero values of Config.
const (
	DefaultSendBuffer = 64 << 10
	DefaultLinger     = 5 * time.Second
	DefaultPerm       = os.FileMode(0o600)

	// DefaultConnMemory is the receive memory a listener's connections
	// share beyond their base (see Config.ConnMemory): room for two
	// messages of the default largest size (16 MiB) at once, and for many
	// smaller ones, while 200 connections stalled inside maximal messages
	// keep a server well under 100 MB.
	DefaultConnMemory = 32 << 20

	// DefaultRecvFiles is the bound of WithRecvFiles(0): one message's
	// worth, the most the kernel passes in one (SCM_MAX_FD).
	DefaultRecvFiles = 253
)

// An Option configures an endpoint, a Sender or a Receiver.
type Option func(*Config)

// NewConfig applies opts to a zero Config and returns it.
func NewConfig(opts ...Option) *Config {
	c := new(Config)
	for _, o := range opts {
		if o != nil {
			o(c)
		}
	}
	return c
}

// WithCodec encodes the channel's values with c instead of codec.Default.
// Both ends of a channel must use the same codec.
func WithCodec[T any](c codec.Codec[T]) Option {
	return func(cfg *Config) { cfg.Codec = c }
}

// WithTag makes a Sender mark every message with tag.
func WithTag(tag uint32) Option {
	return func(c *Config) { c.Tag = tag }
}

// WithMaxMessageSize sets the largest encoded message a receiver accepts and
// a sender sends.
func WithMaxMessageSize(n int) Option {
	return func(c *Config) { c.MaxMessageSize = n }
}

// WithSendBuffer sets how many bytes a stream sender may hold in user space
// while the kernel is full; n < 0 disables it.
func WithSendBuffer(n int) Option {
	return func(c *Config) {
		if n == 0 {
			n = -1
		}
		c.SendBuffer = n
	}
}

// WithLinger bounds how long Close waits to flush what a sender holds.
func WithLinger(d time.Duration) Option {
	return func(c *Config) { c.Linger = d }
}

// WithAtomicWrites turns the PIPE_BUF rule for pipes and FIFOs on or off
// (see Config.AtomicWrites).
func WithAtomicWrites(on bool) Option {
	return func(c *Config) { c.AtomicWrites = &on }
}

// WithPerm sets the permission of objects an endpoint creates.
func WithPerm(perm os.FileMode) Option {
	return func(c *Config) { c.Perm = perm }
}

// WithFraming makes a byte-stream endpoint cut its stream into messages
// with f instead of the wire format's header: codec.FixedRecords,
// codec.DelimitedRecords or codec.LengthPrefixed, to talk to a program that
// writes records of its own. Both ends must agree; such records carry no
// tag, so WithTag and WithHandshake(true) are refused with it.
func WithFraming(f codec.Framing) Option {
	return func(c *Config) { c.Framing = f }
}

// StreamFraming returns Framing, or codec.Frames when it is unset.
func (c *Config) StreamFraming() codec.Framing {
	if c.Framing == nil {
		return codec.Frames
	}
	return c.Framing
}

// WithRawMessages makes a message transport carry exactly the peer's bytes
// (see Config.RawMessages): for talking to a program that is not ipcchan.
func WithRawMessages() Option {
	return func(c *Config) { c.RawMessages = true }
}

// WithPeerCheck refuses Unix socket peers for which check returns an error,
// in place of the default check (see Config.PeerCheck).
func WithPeerCheck(check func(PeerCred) error) Option {
	return func(c *Config) { c.PeerCheck = check }
}

// WithConnMemory bounds the receive-buffer memory that all the connections
// accepted from one listener hold together beyond 128 KiB each (see
// Config.ConnMemory); n < 0 removes the bound. A message that could never
// fit in it is refused with an error wrapping ErrFrameTooLarge.
func WithConnMemory(n int) Option {
	return func(c *Config) { c.ConnMemory = n }
}

// ConnMemoryLimit returns the bound ConnMemory sets, with its default
// filled in, or -1 for none.
func (c *Config) ConnMemoryLimit() int {
	switch {
	case c.ConnMemory < 0:
		return -1
	case c.ConnMemory == 0:
		n := c.StreamFraming().RecordLen(c.MaxMessage())
		if n < 0 {
			n = math.MaxInt // overflowed
		}
		return max(DefaultConnMemory, n)
	}
	return c.ConnMemory
}

// WithRecvFiles lets a receiver on a Unix stream socket take the files sent
// with values (see Config.RecvFiles), holding at most max descriptors ahead
// of the values that claim them; max <= 0 means DefaultRecvFiles. Without
// it, Receiver.RecvFiles is refused and the kernel closes whatever
// descriptors a peer sends.
func WithRecvFiles(max int) Option {
	if max <= 0 {
		max = DefaultRecvFiles
	}
	return func(c *Config) { c.RecvFiles = max }
}

// WithTrustedOwners lets an endpoint open files owned by the users uids as
// if they were this user's own (see Config.TrustedOwners): for example
// WithTrustedOwners(0) for a lock file root made in /run/lock. Calls add up.
func WithTrustedOwners(uids ...int) Option {
	uids = append([]int(nil), uids...)
	return func(c *Config) { c.TrustedOwners = append(c.TrustedOwners, uids...) }
}

// Trusts reports whether a file owned by uid may be used as this process's
// own: uid is the effective uid, or one of TrustedOwners.
func (c *Config) Trusts(uid int) bool {
	return uid == os.Geteuid() || slices.Contains(c.TrustedOwners, uid)
}

// WithSenders tells a receiver on a transport without a kernel end of
// stream how many senders' end-of-stream markers to wait for.
func WithSenders(n int) Option {
	return func(c *Config) { c.Senders = n }
}

// SenderCount returns Senders or its default, 1.
func (c *Config) SenderCount() int { return max(c.Senders, 1) }

// MaxMessage returns MaxMessageSize or its default.
func (c *Config) MaxMessage() int {
	if c.MaxMessageSize <= 0 {
		return codec.DefaultMaxFrameSize
	}
	return c.MaxMessageSize
}

// SendBufferSize returns SendBuffer or its default; 0 means no buffer.
func (c *Config) SendBufferSize() int {
	switch {
	case c.SendBuffer < 0:
		return 0
	case c.SendBuffer == 0:
		return DefaultSendBuffer
	}
	return c.SendBuffer
}

// LingerTime returns Linger or its default.
func (c *Config) LingerTime() time.Duration {
	if c.Linger <= 0 {
		return DefaultLinger
	}
	return c.Linger
}

// Atomic returns AtomicWrites, or def when it is unset.
func (c *Config) Atomic(def bool) bool {
	if c.AtomicWrites == nil {
		return def
	}
	return *c.AtomicWrites
}

// FilePerm returns Perm or DefaultPerm.
func (c *Config) FilePerm() os.FileMode {
	if c.Perm == 0 {
		return DefaultPerm
	}
	return c.Perm
}

func codecFor[T any](c *Config) (codec.Codec[T], error) {
	if c.Codec == nil {
		return codec.Default[T]()
	}
	cd, ok := c.Codec.(codec.Codec[T])
	if !ok {
		return nil, fmt.Errorf("ipcchan: codec %T does not encode %v", c.Codec, reflect.TypeFor[T]())
	}
	return cd, nil
}
