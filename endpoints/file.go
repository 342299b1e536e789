package endpoints

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
)

// FileReceiver returns a Receiver on a descriptor the caller opened or was
// given: the read end of an os.Pipe, a FIFO, an inherited standard input, a
// socket (stream, seqpacket or datagram, Unix or TCP/UDP), a POSIX message
// queue or a shared-memory ring (one received over a Unix socket, say). What
// the descriptor is decides the endpoint, as for [InheritReceiver]; a
// descriptor open for writing only, or of a kind no endpoint works on (a
// regular file, say), is refused. It works on a duplicate of f's
// descriptor, put in non-blocking mode (which f shares); close f once
// FileReceiver returns.
//
// Options are those of the constructor of the same kind of end, less
// WithPerm (nothing is created): OpenFIFOReceiver's for a pipe or FIFO,
// OpenMQReceiver's for a queue, RingReceiver's for a ring, ListenPacket's
// for a datagram socket, and a receiving Conn half's for a stream or
// seqpacket socket ([Dial]); WithPeerCheck on a Unix socket checks the
// process at the other end of a connection, or every datagram's sender,
// as Dial and ListenPacket do.
func FileReceiver[T any](f *os.File, opts ...ipcchan.Option) (*ipcchan.Receiver[T], error) {
	fd, info, err := fileFD(f, useRead)
	if err != nil {
		return nil, err
	}
	return receiverOnFD[T](fd, info, info.describe(f.Name(), useRead), opts)
}

// FileSender returns a Sender on a descriptor the caller opened or was
// given; see [FileReceiver]. Atomic writes on a pipe or FIFO are off unless
// ipcchan.WithAtomicWrites(true) is given; a socket is not shut down on
// Close (other descriptors of it may be in use), so the peer sees the end
// once every descriptor of it is closed. Options are those of the
// constructor of the same kind of end, as for FileReceiver:
// OpenFIFOSender's, OpenMQSender's, RingSender's, DialPacket's, or a
// sending Conn half's.
func FileSender[T any](f *os.File, opts ...ipcchan.Option) (*ipcchan.Sender[T], error) {
	fd, info, err := fileFD(f, useWrite)
	if err != nil {
		return nil, err
	}
	return senderOnFD[T](fd, info, info.describe(f.Name(), useWrite), false, opts)
}

// fileFD duplicates f's descriptor and checks it is usable as want.
func fileFD(f *os.File, want use) (int, fdInfo, error) {
	if f == nil {
		return -1, fdInfo{}, errNilFile("open")
	}
	fd, err := dupOf(f)
	if err != nil {
		return -1, fdInfo{}, opErr("open", f.Name(), err)
	}
	info, err := inspectFD(fd)
	if err == nil {
		if why := info.check(want); why != "" {
			err = fmt.Errorf("the descriptor %s", why)
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, fdInfo{}, opErr("open", f.Name(), err)
	}
	return fd, info, nil
}
