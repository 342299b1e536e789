package endpoints

import (
	"bytes"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// End of stream on message queues, which have no kernel end of stream: a
// sender's Close posts a marker message, and a receiver configured for N
// senders (ipcchan.WithSenders) ends with io.EOF after N markers. The
// marker is a message whose body is exactly these 16 bytes, sent with
// priority 0 on a POSIX queue (so it comes after everything the sender sent
// before, whatever its priority) and with the sender's message type on a
// SysV queue. A queue too small to carry 16 bytes gets no marker.
const queueEOS = "\x00IPCCHAN-EOS\x00\x00\x00\x01"

func isQueueEOS(b []byte) bool { return bytes.Equal(b, []byte(queueEOS)) }

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
