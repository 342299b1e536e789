package ipcchantest

import (
	"encoding/binary"
	"fmt"
)

// msgHeader is the size of the suite's message header: sender id (4 bytes),
// sequence number (8), total length (4).
const msgHeader = 16

// makeMsg builds the message seq of sender, size bytes long (at least
// msgHeader), appending to buf[:0].
func makeMsg(buf []byte, sender uint32, seq uint64, size int) []byte {
	size = max(size, msgHeader)
	buf = buf[:0]
	buf = binary.BigEndian.AppendUint32(buf, sender)
	buf = binary.BigEndian.AppendUint64(buf, seq)
	buf = binary.BigEndian.AppendUint32(buf, uint32(size))
	for i := msgHeader; i < size; i++ {
		buf = append(buf, pattern(sender, seq, i))
	}
	return buf
}

func pattern(sender uint32, seq uint64, i int) byte {
	return byte(uint64(sender)*131 + seq*31 + uint64(i)*7)
}

// checkMsg verifies that m is whole and untouched and returns its sender
// and sequence number.
func checkMsg(m []byte) (sender uint32, seq uint64, err error) {
	if len(m) < msgHeader {
		return 0, 0, fmt.Errorf("message of %d bytes is shorter than its header", len(m))
	}
	sender = binary.BigEndian.Uint32(m)
	seq = binary.BigEndian.Uint64(m[4:])
	if n := binary.BigEndian.Uint32(m[12:]); int(n) != len(m) {
		return sender, seq, fmt.Errorf("message %d/%d: %d bytes, its header says %d (torn or merged)", sender, seq, len(m), n)
	}
	for i := msgHeader; i < len(m); i++ {
		if m[i] != pattern(sender, seq, i) {
			return sender, seq, fmt.Errorf("message %d/%d: byte %d corrupted", sender, seq, i)
		}
	}
	return sender, seq, nil
}

// sizeFor gives message seq a size between msgHeader and limit, mostly
// small, now and then large, so that frames cross buffer and page edges.
func sizeFor(seq uint64, limit int) int {
	var n int
	switch {
	case seq%997 == 0:
		n = 64 << 10
	case seq%101 == 0:
		n = 4096 + int(seq%512)
	default:
		n = msgHeader + int(seq*37%480)
	}
	return min(max(n, msgHeader), limit)
}

// tracker checks per-sender order: each sender's sequence numbers must come
// as 0, 1, 2, ... with none missing or repeated.
type tracker struct {
	next map[uint32]uint64
	n    int
}

func newTracker() *tracker { return &tracker{next: map[uint32]uint64{}} }

func (t *tracker) add(m []byte) error {
	sender, seq, err := checkMsg(m)
	if err != nil {
		return err
	}
	if want := t.next[sender]; seq != want {
		if seq < want {
			return fmt.Errorf("sender %d: message %d again after %d (duplicate or reordered)", sender, seq, want-1)
		}
		return fmt.Errorf("sender %d: message %d arrived where %d was due (lost or reordered)", sender, seq, want)
	}
	t.next[sender]++
	t.n++
	return nil
}
