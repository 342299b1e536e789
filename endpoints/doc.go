// Package endpoints gives typed ipcchan senders and receivers over Linux IPC
// primitives, one file per primitive.
//
//   - pipe.go: [Pipe], an anonymous pipe;
//   - fifo.go: [CreateFIFO], [OpenFIFOReceiver], [OpenFIFOSender];
//   - socket.go, listener.go: [Listen], [Dial], [Socketpair] and [Conn] for
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
package endpoints
