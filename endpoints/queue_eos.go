package endpoints

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
)

// End of stream on message queues, which have no kernel end of stream: a
// sender's Close posts a marker message, and a receiver configured for N
// senders (ipcchan.WithSenders) ends with io.EOF after N markers. The
// marker is a message whose body is exactly these 16 bytes, sent with
// priority 0 on a POSIX queue (so it comes after everything the sender sent
// before, whatever its priority) and with the sender's message type on a
// SysV queue. A queue too small to carry 16 bytes gets no marker.
//
// So that no value can forge the marker, a value whose encoding begins with
// the marker's first 15 bytes (queueEOSPrefix) is sent escaped: those 15
// bytes, the byte 0x02, then the value whole. A receiver takes only a body
// of exactly the marker for end of stream (on POSIX queues only at
// priority 0), strips the first 16 bytes of a body that begins with
// queueEscape, and delivers every other body as it is. Values that do not
// begin with the prefix, nearly all, go as they are, with no copy.
// Raw messages (ipcchan.WithForeignPeer) have neither marker nor escape.
const (
	queueEOSPrefix = "\x00IPCCHAN-EOS\x00\x00\x00"
	queueEOS       = queueEOSPrefix + "\x01"
	queueEscape    = queueEOSPrefix + "\x02"
)

// queueNeedsEscape reports whether the value msg must be sent escaped: if
// it begins with the marker's prefix.
func queueNeedsEscape(msg []byte) bool {
	return len(msg) >= len(queueEOSPrefix) && msg[0] == 0 && string(msg[:len(queueEOSPrefix)]) == queueEOSPrefix
}

// appendQueueValue appends to dst the body that carries the value msg on a
// queue whose messages hold at most size bytes: msg itself, or its escaped
// form. It fails, wrapping ErrMessageTooLarge, if the escaped form does not
// fit. A queue too small for the marker carries every value as it is.
func appendQueueValue(dst, msg []byte, size int) ([]byte, error) {
	if size >= len(queueEOS) && queueNeedsEscape(msg) {
		if len(msg)+len(queueEscape) > size {
			return dst, queueEscapeTooLarge(len(msg), size)
		}
		dst = append(dst, queueEscape...)
	}
	return append(dst, msg...), nil
}

// queueEscapeTooLarge is the error for a value whose escaped form does not
// fit a queue message of size bytes.
func queueEscapeTooLarge(n, size int) error {
	return fmt.Errorf("%w: a %d-byte value that begins like the end-of-stream marker (%q) goes escaped, %d bytes longer, and %d bytes exceed the queue's message size %d: make the queue's messages larger, or use ipcchan.WithForeignPeer on both ends",
		ipcchan.ErrMessageTooLarge, n, queueEOSPrefix, len(queueEscape), n+len(queueEscape), size)
}

// queueBody reads a received body: eos reports the end-of-stream marker,
// and value is the value the body carries (the body without its escape,
// if it has one; the body itself if it is the marker).
func queueBody(body []byte) (value []byte, eos bool) {
	if len(body) < len(queueEscape) || body[0] != 0 || string(body[:len(queueEOSPrefix)]) != queueEOSPrefix {
		return body, false
	}
	switch body[len(queueEOSPrefix)] {
	case 0x01: // the marker's last byte
		return body, len(body) == len(queueEOS)
	case 0x02: // the escape's
		return body[len(queueEscape):], false
	}
	return body, false
}

// postEOS posts an end-of-stream marker with try, which returns
// unix.EAGAIN while the queue is full, retrying every millisecond for up to
// linger. It goes around the poller, which a Send blocked at the same moment
// may be using.
func postEOS(linger time.Duration, try func() error) error {
	deadline := time.Now().Add(linger)
	for {
		err := try()
		switch {
		case err == nil:
			return nil
		case err != unix.EAGAIN:
			return fmt.Errorf("post end-of-stream marker: %w", err)
		case time.Now().After(deadline):
			return fmt.Errorf("the queue stayed full for %v: end-of-stream marker not posted", linger)
		}
		time.Sleep(time.Millisecond)
	}
}
