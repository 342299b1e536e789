package endpoints

import (
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
