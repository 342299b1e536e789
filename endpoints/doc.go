// Package endpoints gives typed ipcchan senders and receivers over Linux IPC
// primitives, one file per primitive.
//
//   - pipe.go: [PipePair], an anonymous pipe;
//   - fifo.go: [CreateFIFO], [OpenFIFOReceiver], [OpenFIFOSender];
//   - socket.go, listener.go: [Listen], [Dial], [SocketPair] and [Conn] for
//     Unix stream, Unix seqpacket and TCP connections;
//   - packet.go, datagram.go: [ListenPacket], [DialPacket] for Unix datagram
//     and UDP sockets;
//   - handoff.go: [Start], [Pass], [Share], [InheritSender], [InheritReceiver],
//     [InheritConn] to hand endpoints to a child started with os/exec;
//   - file.go: [FileSender], [FileReceiver] over a descriptor the caller
//     opened (one received with ipcchan.Receiver.RecvFiles, say).
//
// Byte streams (pipes, FIFOs, stream sockets) carry frames in the wire
// format of package codec: an 8-byte header (big-endian payload length,
// big-endian tag) and the payload. Message sockets carry one message per
// datagram or record: a big-endian tag, then the payload. Every descriptor
// is non-blocking and waited on through the Go runtime's poller, so an idle
// endpoint holds no goroutine and no thread.
//
// # Who may reach a Unix socket
//
// A socket bound to a path is guarded by the file's permission (0600
// unless ipcchan.WithPerm says otherwise): only its owner can connect or
// send to it. An abstract name ("@name") has no permissions at all, so
// every endpoint on one checks the peer's credentials instead, and by
// default admits only processes running as this process's uid (root only
// if this process runs as root):
//
//   - [Listen] checks every connection it accepts (SO_PEERCRED) and closes a
//     refused one before reading anything from it ([Listener.Refused]
//     counts them);
//   - [Dial] checks the process that listens, and refuses to talk to
//     another user's listener;
//   - a unixgram Receiver ([ListenPacket], or an inherited one bound to an
//     abstract name) reads the sender's credentials with every datagram
//     (SO_PASSCRED) and drops each datagram a refused sender sent, an
//     end-of-stream marker included, without delivering it
//     ([RefusedDatagrams] counts them);
//   - [DialPacket] checks who owns the receiving socket, which the kernel
//     tells through NETLINK_SOCK_DIAG (Linux 5.3 or later); the check sees
//     the owner's uid, with PID 0 and GID -1, which the kernel does not
//     report (and UID -1 where the kernel cannot tell: refused by default).
//
// The options [SameUser] (the default, stated), [AllowIDs] (given uids and
// gids) and [AnyUser] (everybody), or ipcchan.WithPeerCheck (any check),
// replace the default check; on a path they add a check to the file's
// permission. A [SocketPair] and connections handed down ([InheritConn])
// are checked only if their options ask for it. TCP and UDP carry no
// credentials: whoever can reach the address can connect or send.
package endpoints
