package endpoints

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
)

// PipePair returns the two ends of a typed channel over an anonymous pipe: a
// Sender on the write end and a Receiver on the read end.
//
// Either end can be handed to a child process with [Pass] and [Start]. A
// pipe has one writer unless its write end is handed to several processes;
// then turn on ipcchan.WithAtomicWrites so their frames never interleave.
// The Receiver sees io.EOF once every copy of the write end is closed.
//
// Options: WithCodec, WithTag, WithMaxMessageSize, WithSendBuffer,
// WithLinger, WithAtomicWrites, WithHandshake, WithForeignPeer, and
// WithFraming to speak an existing program's records (fixed, delimited,
// length-prefixed); each end reads its own. PipePair returns an error if
// the pipe cannot be made or no codec fits T.
func PipePair[T any](opts ...ipcchan.Option) (*ipcchan.Sender[T], *ipcchan.Receiver[T], error) {
	cfg, err := newConfig("open", "a pipe", optStream, opts)
	if err != nil {
		return nil, nil, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, nil, &ipcchan.OpError{Op: "pipe", Err: limitErr(err, descriptorKind)}
	}
	name := pipeName(p[0])
	rx, err := newStreamReceiverOn[T](p[0], name+" read end", pipeKind, cfg)
	if err != nil {
		unix.Close(p[1])
		return nil, nil, err
	}
	tx, err := newStreamSenderOn[T](p[1], name+" write end", pipeKind, cfg)
	if err != nil {
		rx.Close()
		return nil, nil, err
	}
	return tx, rx, nil
}

// pipeName names a pipe the way /proc/self/fd shows it: pipe:[inode].
func pipeName(fd int) string {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "pipe"
	}
	return fmt.Sprintf("pipe:[%d]", st.Ino)
}
