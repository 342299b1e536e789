// Package ipcchantest is the conformance suite every ipcchan endpoint
// passes: the rules of the channel semantics (order, integrity, end of
// stream, cancellation, nothing lost, back-pressure, close, peer death,
// concurrency, end is real) checked across two real processes, the test
// binary re-executed as the peer, in the spirit of golang.org/x/net/nettest.
//
// An endpoint's test package describes its endpoint with a [Harness], calls
// [Child] first thing in TestMain (so that a re-executed test binary plays
// the peer), and runs [Run] from a test:
//
//	func TestMain(m *testing.M) {
//		ipcchantest.Child(pipeHarness)
//		goleak.VerifyTestMain(m)
//	}
//
//	func TestPipeConformance(t *testing.T) { ipcchantest.Run(t, pipeHarness) }
package ipcchantest

import (
	"os"
	"os/exec"

	"github.com/ipcchan/go/ipcchan"
)

// Passable is an end that a Harness can hand to a child process.
type Passable interface {
	File() (*os.File, error)
	Close() error
}

// Harness tells the suite how to make and share one kind of endpoint. The
// element type is []byte: the suite writes sequence numbers and a checkable
// pattern into each message.
type Harness struct {
	// Name identifies the harness; children find theirs by it.
	Name string

	// Pair makes a fresh channel in this process.
	Pair func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error)

	// Give hands ends to cmd under the given names, so that the child can
	// take them with TakeSender or TakeReceiver. With share false the ends
	// move to the child (they are closed here); with share true they stay
	// open here. release is called once cmd has started.
	Give func(cmd *exec.Cmd, share bool, ends map[string]Passable) (release func(), err error)

	// TakeSender and TakeReceiver pick up, in the child, an end given with
	// Give.
	TakeSender   func(name string, opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], error)
	TakeReceiver func(name string, opts ...ipcchan.Option) (*ipcchan.Receiver[[]byte], error)

	// Late, for an endpoint that a sender reaches by name after the
	// receiver is open (a FIFO, by its path), opens a receiver that no
	// sender has reached yet. It returns the name for JoinSender and a
	// function that removes what Late made. Optional: the rules about a
	// sender that comes late (EndIsReal) run on Pair alone without it.
	Late func(opts ...ipcchan.Option) (rx *ipcchan.Receiver[[]byte], name string, remove func(), err error)

	// JoinSender opens, in the child, a sender on a name Late returned.
	JoinSender func(name string, opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], error)

	// MaxMessage is the largest message a single sender sends with default
	// options; 0 means no limit short of the suite's own (1 MiB).
	MaxMessage int

	// MaxShared is the largest message that several sender processes may
	// send on one shared end at once, and SharedOpts the options their
	// Senders are taken with (for pipes: atomic writes, PIPE_BUF).
	MaxShared  int
	SharedOpts []ipcchan.Option

	// CountsSenders says that the transport's receiver sees the end of a
	// stream by counting its senders' in-band end-of-stream markers
	// (datagrams, message queues, the ring): the suite then tells it with
	// WithSenders how many sender processes share a channel. Byte streams
	// and connections learn the end from the kernel and refuse the option.
	CountsSenders bool

	// WatchPeer makes the suite watch the peer process's pid with
	// WatchPeer where a peer dies, for transports with no kernel end of
	// stream: the survivor must then see every whole message and
	// ErrPeerGone.
	WatchPeer bool

	// Lookalikes are values that look like the transport's in-band
	// end-of-stream marker, if it has one: the marker's exact bytes,
	// values that begin with them or with part of them, and the escaped
	// form of such values. The ForgedEndOfStream test sends each (with
	// values every transport must carry, an empty one among them) and
	// checks that each arrives as a value.
	Lookalikes [][]byte

	// Skip names the suite's tests (Order100k, SenderKilled,
	// CloseWhileBlocked/Send, ...) that the transport cannot pass by its
	// nature, each with the reason, which the test reports as it skips.
	Skip map[string]string
}

// sharedLimit is the largest message several sender processes send on one
// shared end.
func (h *Harness) sharedLimit() int {
	if h.MaxShared > 0 {
		return min(h.maxMessage(), h.MaxShared)
	}
	return h.maxMessage()
}

// sendersOpts returns the options that tell a receiver of h that n
// senders share its channel.
func (h *Harness) sendersOpts(n int) []ipcchan.Option {
	if !h.CountsSenders {
		return nil
	}
	return []ipcchan.Option{ipcchan.WithSenders(n)}
}

func (h *Harness) maxMessage() int {
	if h.MaxMessage <= 0 || h.MaxMessage > 1<<20 {
		return 1 << 20
	}
	return h.MaxMessage
}
