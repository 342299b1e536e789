// Package endpoints gives typed ipcchan senders and receivers over Linux IPC
// primitives, one file per primitive.
//
// Byte streams (pipes, FIFOs) carry frames in the wire format of package
// codec: an 8-byte header (big-endian payload length, big-endian tag) and the
// payload. Every descriptor is non-blocking and waited on through the Go
// runtime's poller, so an idle endpoint holds no goroutine and no thread.
//
// Endpoints can be handed to a child process started with os/exec: see
// [Start], [Pass], [InheritSender] and [InheritReceiver].
package endpoints
