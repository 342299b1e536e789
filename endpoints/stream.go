package endpoints

import (
	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// streamKind says what a stream descriptor is, which decides its defaults.
type streamKind struct {
	name         string // "pipe", "fifo", "socket"
	fifo         bool   // a reader may open before any writer
	atomicWrites bool   // default for Config.AtomicWrites
	socket       bool   // a socket
	shutdown     bool   // shut the socket down for writing on Close
}

var (
	pipeKind   = streamKind{name: "pipe"}
	fifoKind   = streamKind{name: "fifo", fifo: true, atomicWrites: true}
	socketKind = streamKind{name: "socket", socket: true, shutdown: true}
)

// queuedIoctl is the ioctl that tells how much written data the reader has
// not taken yet.
func (k streamKind) queuedIoctl() uint {
	if k.socket {
		return unix.TIOCOUTQ // SIOCOUTQ
	}
	return unix.TIOCINQ // FIONREAD on the pipe
}

// newStreamSenderOn returns a Sender writing frames to fd, which it owns
// (fd is closed on error too).
func newStreamSenderOn[T any](fd int, desc string, kind streamKind, cfg *transport.Config) (*ipcchan.Sender[T], error) {
	pfd, err := poller.Open(fd, desc)
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	t, err := newStreamSender(pfd, desc, cfg, kind)
	if err != nil {
		pfd.Close()
		return nil, opErr("open", desc, err)
	}
	if err := checkTagOption(cfg, t, desc); err != nil {
		pfd.Close()
		return nil, err
	}
	tx, err := ipcchan.NewSender[T](t, cfg.Options(transport.SenderOptions)...)
	if err != nil {
		pfd.Close()
		return nil, err
	}
	return tx, nil
}

// newStreamReceiverOn returns a Receiver reading frames from fd, which it
// owns (fd is closed on error too).
func newStreamReceiverOn[T any](fd int, desc string, kind streamKind, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	return streamReceiverOn[T](fd, desc, kind, nil, cfg)
}

// streamReceiverOn is newStreamReceiverOn for a connection that draws on
// its listener's receive memory, mem (nil for none).
func streamReceiverOn[T any](fd int, desc string, kind streamKind, mem *connMemory, cfg *transport.Config) (*ipcchan.Receiver[T], error) {
	pfd, err := poller.Open(fd, desc)
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	framing, err := streamFraming(cfg)
	if err != nil {
		pfd.Close()
		return nil, opErr("open", desc, err)
	}
	rx, err := ipcchan.NewReceiver[T](newStreamReceiver(pfd, desc, cfg, kind.fifo, framing, mem), cfg.Options(transport.ReceiverOptions)...)
	if err != nil {
		pfd.Close()
		return nil, err
	}
	return rx, nil
}
