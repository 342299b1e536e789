package endpoints

import (
	"fmt"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// The options each kind of endpoint honours. A constructor reads its
// options with newConfig, naming its set: any other option is refused by
// name (ipcchan.ErrOption), never silently ignored.
const (
	optRecv = transport.ReceiverOptions
	optSend = transport.SenderOptions

	// Byte streams: pipes, FIFOs, stream sockets.
	optStreamRecv = optRecv | transport.OptFraming
	optStreamSend = optSend | transport.OptFraming | transport.OptSendBuffer | transport.OptLinger | transport.OptAtomicWrites
	optStream     = optStreamRecv | optStreamSend

	// Unix stream sockets add peer checks and files; a listener on a path
	// adds the socket file's mode, and every listener its connections'
	// shared receive memory.
	optUnixConn = optStream | transport.OptPeerCheck | transport.OptRecvFiles

	// Message transports: datagrams, queues, the ring.
	optMsgRecv = optRecv | transport.OptSenders
	optMsgSend = optSend | transport.OptLinger

	// A unixpacket connection: the kernel ends its stream (no marker to
	// count or to wait for room for) and it holds nothing in user space,
	// so neither WithSenders nor WithLinger has anything to do.
	optPacketConn = optRecv | optSend | transport.OptPeerCheck

	// What creates a named object.
	optCreate = transport.OptPerm

	// What opens a named object another program creates.
	optWait = transport.OptWaitForCreate
)

// newConfig reads opts for the constructor op of endpoint, which honours
// allowed; the error names a refused option.
func newConfig(op, endpoint string, allowed transport.OptionName, opts []ipcchan.Option) (*transport.Config, error) {
	cfg, err := transport.NewConfig(endpoint, allowed, opts)
	if err != nil {
		return nil, &ipcchan.OpError{Op: op, Endpoint: endpoint, Err: err}
	}
	return cfg, nil
}

// tagChecker is implemented by the transports whose tags have a range:
// checkTag says why the transport cannot send a message tagged tag,
// wrapping ErrReservedTag, or returns nil.
type tagChecker interface{ checkTag(tag uint32) error }

// checkTagOption refuses, at construction, a WithTag that t, the transport
// of the sender cfg configures, cannot carry: every Send would fail.
func checkTagOption(cfg *transport.Config, t any, desc string) error {
	tc, ok := t.(tagChecker)
	if !ok || !cfg.Given(transport.OptTag) {
		return nil
	}
	if err := tc.checkTag(cfg.Tag()); err != nil {
		return &ipcchan.OpError{Op: "open", Endpoint: desc, Err: fmt.Errorf("%w: %s(%d): %w", ipcchan.ErrOption, transport.OptTag, cfg.Tag(), err)}
	}
	return nil
}

// checkMarkerless refuses, with WithForeignPeer on a transport whose only
// end of stream is an in-band marker (datagram sockets, message queues),
// which a peer that is not ipcchan neither sends nor reads, the options
// that concern the marker: how many a receiver counts (WithSenders), how
// long a sender's Close waits to post its own (WithLinger). They would do
// nothing.
func checkMarkerless(op, desc string, cfg *transport.Config) error {
	if !cfg.ForeignPeer() {
		return nil
	}
	for _, n := range []transport.OptionName{transport.OptSenders, transport.OptLinger} {
		if cfg.Given(n) {
			return &ipcchan.OpError{Op: op, Endpoint: desc, Err: fmt.Errorf("%w: %s does not apply with %s here: a peer that is not ipcchan sends and reads no end-of-stream markers",
				ipcchan.ErrOption, n, transport.OptForeignPeer)}
		}
	}
	return nil
}
