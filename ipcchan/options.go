package ipcchan

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan/transport"
)

// An Option configures an endpoint, a Sender or a Receiver. Each
// constructor honours the options that concern it, says so in its doc, and
// refuses any other with an error wrapping ErrOption that names the option;
// a value out of an option's range is refused the same way, and so are
// options that contradict each other or that the endpoint cannot keep (a
// WithTag the transport cannot carry, WithHandshake(true) with
// WithForeignPeer, ...). Nothing is silently ignored, and an option left
// out means its default — never the zero value of its argument.
//
// The zero Option is no option: constructors ignore it, so that a program
// may leave a slot of its options empty. An option given more than once
// takes its last value, except WithTrustedOwners, whose calls add up.
type Option = transport.Option

// WithCodec encodes the channel's values with c instead of codec.Default.
// Both ends of a channel must use the same codec. A codec of another type
// than the channel's is refused with ErrOption; a connection carrying two
// types (endpoints.Conn) takes one WithCodec for each.
func WithCodec[T any](c codec.Codec[T]) Option { return transport.WithCodec(c) }

// WithTag makes a Sender mark every message sent with Send with tag: a
// priority or a message type on transports that have one, a sub-channel
// number on byte streams. A tag the transport cannot carry or keeps for
// itself — a POSIX priority above 32767, SysV type 0, 0xFFFFFFFF on
// datagram sockets, 0x80000000 and up on Unix stream sockets, any but 0 on
// a foreign peer's datagrams or untagged records, transport.HandshakeTag
// while the hello is on — is refused with an error wrapping ErrOption and
// ErrReservedTag.
func WithTag(tag uint32) Option { return transport.WithTag(tag) }

// WithMaxMessageSize sets the largest encoded message a receiver accepts
// and a sender sends, n ≥ 1 (default 16 MiB). A receiver refuses a longer
// message before allocating anything for it. With the handshake on (byte
// streams' default), n must hold the hello, 19 bytes and the codec's name
// (see PROTOCOL.md §3), or the option is refused.
func WithMaxMessageSize(n int) Option { return transport.WithMaxMessageSize(n) }

// WithSendBuffer sets how many bytes a byte-stream sender may hold in user
// space while the kernel buffer is full, so that frames queued behind a
// slow reader leave in one write (default 64 KiB). 0 means none: Send
// returns only once its frame is in the kernel.
func WithSendBuffer(n int) Option { return transport.WithSendBuffer(n) }

// WithLinger bounds how long a sender's Close waits to flush what it holds
// and to post its end-of-stream marker while the transport is full
// (default 5 s). 0 means Close does not wait: what cannot go at once is
// dropped, and Close returns an error saying so.
func WithLinger(d time.Duration) Option { return transport.WithLinger(d) }

// WithAtomicWrites turns the PIPE_BUF rule on or off for a byte-stream
// sender: on, every frame goes in one write of at most 4096 bytes, so that
// frames from several writer processes sharing a pipe or FIFO never
// interleave, and larger messages are refused with ErrMessageTooLarge. It
// is on by default for FIFOs and inherited ends, off for pipes and sockets
// a process made itself.
func WithAtomicWrites(on bool) Option { return transport.WithAtomicWrites(on) }

// WithPerm sets the mode of objects an endpoint creates (default 0600): the
// owner must keep read and write. See the README's Security section for
// what it widens.
func WithPerm(perm os.FileMode) Option { return transport.WithPerm(perm) }

// WithSenders tells a receiver on a transport without a kernel end of
// stream (datagrams, queues, the ring) how many senders' end-of-stream
// markers to wait for before io.EOF, n ≥ 1 (default 1).
func WithSenders(n int) Option { return transport.WithSenders(n) }

// WithHandshake turns the hello on or off (see PROTOCOL.md §3). It is on by
// default for byte streams and off for message transports; turn it off on
// both sides to talk to a program that does not say hello. WithHandshake
// (true) is refused with WithForeignPeer, with an untagged WithFraming,
// and on POSIX queues, none of which can carry a hello.
func WithHandshake(on bool) Option { return transport.WithHandshake(on) }

// WithFraming makes a byte-stream endpoint cut its stream into messages
// with f instead of the wire format's header: codec.FixedRecords,
// codec.DelimitedRecords, codec.LengthPrefixed, codec.ReadRecords or
// codec.PaddedRecords, to talk to a program that
// writes records of its own. Both ends must agree. Such records carry no
// tag, so WithTag (but 0), WithHandshake(true) and WithRecvFiles are
// refused with an untagged framing; so is a framing whose records
// WithMaxMessageSize would never let through (fixed records longer than
// it), or that the PIPE_BUF rule cannot keep (fixed records over 4096
// bytes with atomic writes on).
func WithFraming(f codec.Framing) Option { return transport.WithFraming(f) }

// WithForeignPeer says the peer is not ipcchan, on any endpoint: nothing
// goes on the wire but what the codec writes. There is no hello; on
// datagrams and message queues there is no tag word, no end-of-stream
// marker (Close sends none, and a receiver ends only on its own Close, its
// context, or a seqpacket peer's hang-up) and no escaping; queues still
// carry the POSIX priority or SysV message type as the tag. On byte streams
// messages are framed as WithFraming says (default: the wire format's
// header). On the shared-memory ring, whose protocol every peer speaks, it
// only leaves out the hello. WithHandshake(true) is refused with it, and so
// are, on datagram sockets and queues, which then carry no end-of-stream
// marker, WithSenders and WithLinger.
func WithForeignPeer() Option { return transport.WithForeignPeer() }

// WithPeerCheck refuses the Unix socket peers for which check returns an
// error — a connection at accept or dial, a datagram's sender — in place
// of the endpoint's default (see the README's Security section).
func WithPeerCheck(check func(PeerCred) error) Option { return transport.WithPeerCheck(check) }

// WithConnMemory bounds the receive memory that all the stream connections
// accepted from one listener hold together beyond a base of 128 KiB each:
// a message longer than the base draws on it as its bytes arrive and gives
// it back once delivered; while it is spent the receive waits. Default:
// 32 MiB, or one message of the largest size if that is more; 0 leaves no
// room beyond the base; math.MaxInt is no bound. A message that could
// never fit is refused with an error wrapping ErrFrameTooLarge.
func WithConnMemory(n int) Option { return transport.WithConnMemory(n) }

// WithRecvFiles lets a receiver on a Unix stream socket take the files a
// peer sends with values (Sender.SendFiles, Receiver.RecvFiles), holding at
// most max ≥ 1 descriptors that arrived ahead of the values that claim
// them; that is also the most one value can bring it
// (transport.DefaultRecvFiles, 253, is one message's worth). Without it,
// RecvFiles is refused and the kernel closes whatever descriptors a peer
// sends.
func WithRecvFiles(max int) Option { return transport.WithRecvFiles(max) }

// WithTrustedOwners lets an endpoint open files owned by the users uids as
// if they were this user's own: for example WithTrustedOwners(0) for a lock
// file root made in /run/lock. Files of any other user are refused, root's
// included, so that nobody can plant a lock file for us. Calls add up; the
// option keeps a copy of uids.
func WithTrustedOwners(uids ...int) Option { return transport.WithTrustedOwners(uids...) }

func codecFor[T any](c *transport.Config) (codec.Codec[T], error) {
	if c.Codec() == nil {
		return codec.Default[T]()
	}
	cd, ok := c.Codec().(codec.Codec[T])
	if !ok {
		return nil, fmt.Errorf("%w: %s: codec %T does not encode %v", ErrOption, transport.OptCodec, c.Codec(), reflect.TypeFor[T]())
	}
	return cd, nil
}

// WithWaitForCreate makes an open of an object that another program
// creates — a FIFO, a POSIX or SysV queue, a POSIX shared memory object, a
// SysV segment, a mapped file, a Unix socket to dial, a ring to open in a
// mapping — wait until the object is there instead of failing with an
// error wrapping os.ErrNotExist; a shared memory object or file its
// creator has not sized yet (0 bytes) and a ring not yet formatted are
// waited for the same way, and so is a Unix socket whose file exists but
// refuses connections (bound, not yet listening). ctx bounds the wait: the
// open then returns ctx.Err(), leaving nothing behind. Constructors that
// take a context of their own stop waiting when either ends (pass
// context.Background() here to be bounded by theirs alone); the others
// refuse a ctx that never ends, as the wait could not be cancelled.
//
// The wait sleeps on the kernel's word where there is one (inotify on the
// object's directory: /dev/shm, the FIFO's, the socket's, the file's, and
// /dev/mqueue where it is mounted) and otherwise polls with a backoff from
// 100µs to 20ms (SysV objects, which have no such signal; POSIX queues
// without /dev/mqueue; a ring's header; a socket bound but not listening).
// Security checks are those of the open: no symbolic link is followed, and
// ownership is checked as without the option. The constructors that
// honour it say so.
func WithWaitForCreate(ctx context.Context) Option { return transport.WithWaitForCreate(ctx) }

// WithSubscribers sets how many subscribers a broadcast has room for at
// once, 1 ≤ n ≤ 4096 (default 16): each takes a slot of one cache line in
// the shared memory, which it gives back when it closes or its process
// dies. A subscriber joining a broadcast whose slots are all taken is
// refused with an error wrapping endpoints.ErrNoSlot. Only the
// constructors that format a broadcast (endpoints.Broadcast,
// endpoints.FormatBroadcast) honour it.
func WithSubscribers(n int) Option { return transport.WithSubscribers(n) }

// WithLossy makes a broadcast lossy: its publishers never wait for
// subscribers, and a subscriber that falls more than the broadcast's
// memory behind loses the oldest values; its next receive returns an
// error wrapping ErrLagged, a *LaggedError that says exactly how many it
// lost, and the receive after that goes on with the oldest value still
// held (the semantics of Tokio's broadcast channel). Without it a
// broadcast is lossless: its publishers wait for the slowest subscriber.
// Only the constructors that format a broadcast (endpoints.Broadcast,
// endpoints.FormatBroadcast) honour it.
func WithLossy() Option { return transport.WithLossy() }

// WithReplay makes a broadcast's subscriber start at the oldest value the
// broadcast still holds in its memory, rather than at the next value
// published after it joins. Only endpoints.Subscribe and a subscription
// inherited with endpoints.InheritReceiver honour it.
func WithReplay() Option { return transport.WithReplay() }
