package transport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/ipcchan/go/codec"
)

// The options, as package ipcchan offers them (its With functions call
// these and document each): an option given a value out of its range
// carries the error NewConfig reports.

func option(name OptionName, set func(*Config)) Option { return Option{name: name, apply: set} }

func refused(name OptionName, format string, args ...any) Option {
	return Option{name: name, err: fmt.Errorf(format, args...)}
}

// WithCodec: see ipcchan.WithCodec.
func WithCodec[T any](c codec.Codec[T]) Option {
	if c == nil {
		return refused(OptCodec, "a nil codec: leave the option out for codec.Default")
	}
	return option(OptCodec, func(cfg *Config) { cfg.codec = c })
}

// WithTag: see ipcchan.WithTag.
func WithTag(tag uint32) Option {
	return option(OptTag, func(c *Config) { c.tag = tag })
}

// WithMaxMessageSize: see ipcchan.WithMaxMessageSize.
func WithMaxMessageSize(n int) Option {
	if n < 1 {
		return refused(OptMaxMessageSize, "%d: a message size is at least 1", n)
	}
	return option(OptMaxMessageSize, func(c *Config) { c.maxMessage = n })
}

// WithSendBuffer: see ipcchan.WithSendBuffer.
func WithSendBuffer(n int) Option {
	if n < 0 {
		return refused(OptSendBuffer, "%d: 0 means no buffer; a size is not negative", n)
	}
	return option(OptSendBuffer, func(c *Config) { c.sendBuffer = n })
}

// WithLinger: see ipcchan.WithLinger.
func WithLinger(d time.Duration) Option {
	if d < 0 {
		return refused(OptLinger, "%v: 0 means do not wait; a time is not negative", d)
	}
	return option(OptLinger, func(c *Config) { c.linger = d })
}

// WithAtomicWrites: see ipcchan.WithAtomicWrites.
func WithAtomicWrites(on bool) Option {
	return option(OptAtomicWrites, func(c *Config) { c.atomic = on })
}

// WithPerm: see ipcchan.WithPerm.
func WithPerm(perm os.FileMode) Option {
	switch {
	case perm&^os.ModePerm != 0:
		return refused(OptPerm, "%v: only permission bits (0o777) are a mode", perm)
	case perm&0o600 != 0o600:
		return refused(OptPerm, "%#o: the owner must be able to read and write what it creates", perm)
	}
	return option(OptPerm, func(c *Config) { c.perm = perm })
}

// WithSenders: see ipcchan.WithSenders.
func WithSenders(n int) Option {
	if n < 1 {
		return refused(OptSenders, "%d: a receiver waits for at least one sender", n)
	}
	return option(OptSenders, func(c *Config) { c.senders = n })
}

// WithHandshake: see ipcchan.WithHandshake.
func WithHandshake(on bool) Option {
	return option(OptHandshake, func(c *Config) { c.handshake = on })
}

// WithFraming: see ipcchan.WithFraming.
func WithFraming(f codec.Framing) Option {
	if f == nil {
		return refused(OptFraming, "a nil framing: leave the option out for codec.Frames")
	}
	return option(OptFraming, func(c *Config) { c.framing = f })
}

// WithForeignPeer: see ipcchan.WithForeignPeer.
func WithForeignPeer() Option {
	return option(OptForeignPeer, func(c *Config) { c.foreign = true })
}

// WithPeerCheck: see ipcchan.WithPeerCheck.
func WithPeerCheck(check func(PeerCred) error) Option {
	if check == nil {
		return refused(OptPeerCheck, "a nil check: leave the option out for the endpoint's default")
	}
	return option(OptPeerCheck, func(c *Config) { c.peerCheck = check })
}

// WithConnMemory: see ipcchan.WithConnMemory.
func WithConnMemory(n int) Option {
	if n < 0 {
		return refused(OptConnMemory, "%d: a size is not negative (math.MaxInt for no bound)", n)
	}
	return option(OptConnMemory, func(c *Config) { c.connMemory = n })
}

// WithRecvFiles: see ipcchan.WithRecvFiles.
func WithRecvFiles(max int) Option {
	if max < 1 {
		return refused(OptRecvFiles, "%d: a receiver that takes files holds at least one (DefaultRecvFiles is one message's worth)", max)
	}
	return option(OptRecvFiles, func(c *Config) { c.recvFiles = max })
}

// WithTrustedOwners: see ipcchan.WithTrustedOwners.
func WithTrustedOwners(uids ...int) Option {
	for _, u := range uids {
		if u < 0 {
			return refused(OptTrustedOwners, "uid %d: a uid is not negative", u)
		}
	}
	if len(uids) == 0 {
		return refused(OptTrustedOwners, "%w", errors.New("no uid given"))
	}
	uids = slices.Clone(uids) // checked now: the caller's later changes must not reach it
	return option(OptTrustedOwners, func(c *Config) { c.trustedUsers = append(c.trustedUsers, uids...) })
}

// WithWaitForCreate: see ipcchan.WithWaitForCreate.
func WithWaitForCreate(ctx context.Context) Option {
	if ctx == nil {
		return refused(OptWaitForCreate, "a nil context: give one that ends (context.WithTimeout) to bound the wait")
	}
	return option(OptWaitForCreate, func(c *Config) { c.waitCreate = ctx })
}

// WithSubscribers: see ipcchan.WithSubscribers.
func WithSubscribers(n int) Option {
	if n < 1 || n > MaxSubscribers {
		return refused(OptSubscribers, "%d: a broadcast has room for 1 to %d subscribers", n, MaxSubscribers)
	}
	return option(OptSubscribers, func(c *Config) { c.subscribers = n })
}

// WithLossy: see ipcchan.WithLossy.
func WithLossy() Option {
	return option(OptLossy, func(c *Config) { c.lossy = true })
}

// WithReplay: see ipcchan.WithReplay.
func WithReplay() Option {
	return option(OptReplay, func(c *Config) { c.replay = true })
}
