package ipcchantest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"
)

// forgedAfter is how many ordinary values the "send-lookalikes" child sends
// after the lookalikes, so that a value taken for an end-of-stream marker
// leaves values behind that the receiver then misses.
const forgedAfter = 3

// lookalikes returns the values the ForgedEndOfStream rule sends, in order:
// values every transport must carry as they are (empty, zero bytes, a
// datagram end marker's tag word), the harness's own lookalikes of its
// marker, and after each of them an ordinary value; then forgedAfter
// ordinary values. Values longer than limit are left out.
func lookalikes(h *Harness, limit int) [][]byte {
	common := [][]byte{
		{},
		{0},
		{0, 0, 0, 0},
		{0xFF, 0xFF, 0xFF, 0xFF},
		{0xFF, 0xFF, 0xFF, 0xFF, 0},
		[]byte("IPCCHAN\x00"), // the handshake's magic
	}
	var vs [][]byte
	for i, v := range append(common, h.Lookalikes...) {
		if len(v) > limit {
			continue
		}
		vs = append(vs, v, []byte("ordinary value after lookalike "+strconv.Itoa(i)))
	}
	for i := range forgedAfter {
		vs = append(vs, []byte("ordinary value "+strconv.Itoa(i)+" after all lookalikes"))
	}
	return vs
}

// No value's bytes can forge an end-of-stream marker: a child sends values
// equal to the transport's marker, values that begin with it, its escaped
// form (Harness.Lookalikes) and values every transport must carry as they
// are (an empty one among them), ordinary values between and after them,
// then closes. Every value arrives, exactly and in order, then io.EOF.
func testForgedEndOfStream(t *testing.T, h *Harness) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send-lookalikes", nil, false, map[string]Passable{"out": tx})
	want := lookalikes(h, h.maxMessage())
	ctx := testCtx(t)
	var buf []byte
	for i, w := range want {
		if err := rx.RecvInto(ctx, &buf); err != nil {
			t.Fatalf("value %d of %d (%q): Recv = %v: a value was taken for the end of the stream, or lost", i, len(want), w, err)
		}
		if !bytes.Equal(buf, w) {
			t.Fatalf("value %d of %d: got %q, want %q", i, len(want), buf, w)
		}
	}
	if _, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("after the last value: Recv = %v, want io.EOF", err)
	}
	p.wait()
}

// sendLookalikes is the child's side of ForgedEndOfStream.
func sendLookalikes(ctx context.Context, h *Harness) error {
	tx, err := h.TakeSender("out")
	if err != nil {
		return err
	}
	for i, v := range lookalikes(h, h.maxMessage()) {
		if err = tx.Send(ctx, v); err != nil {
			err = fmt.Errorf("send value %d (%q): %w", i, v, err)
			break
		}
	}
	if cerr := tx.Close(); err == nil {
		err = cerr
	}
	return err
}
