package ipcchantest

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
)

// Select waits on two receivers fed by one child until both end.
func testSelect(t *testing.T, h *Harness) {
	const n = 500
	txA, rxA := pair(t, h)
	txB, rxB := pair(t, h)
	p := startPeer(t, h, "send-two", map[string]string{envCount: itoa(n)}, false, map[string]Passable{"a": txA, "b": txB})
	tr := newTracker()
	var trErr error
	add := func(m []byte) {
		if err := tr.add(m); err != nil && trErr == nil {
			trErr = err
		}
	}
	cases := []ipcchan.Case{ipcchan.OnRecv(rxA, add), ipcchan.OnRecv(rxB, add)}
	ctx := testCtx(t)
	for live := len(cases); live > 0; {
		i, err := ipcchan.Select(ctx, cases...)
		if err == io.EOF {
			cases[i] = ipcchan.Case{}
			live--
			continue
		}
		if err != nil {
			t.Fatalf("Select = %d, %v", i, err)
		}
	}
	if trErr != nil {
		t.Fatal(trErr)
	}
	if tr.next[1] != n || tr.next[2] != n {
		t.Fatalf("got %d and %d messages, want %d each", tr.next[1], tr.next[2], n)
	}
	p.wait()
}

// Select with a send case mixed with a receive case, as a select statement
// with both: every value whose send case was chosen arrives once and in
// order, a send case that lost to the ready receive case sent nothing, and
// the send case waits for room (the child reads while the parent writes
// messages of every size, which fill the transport).
func testSelectSend(t *testing.T, h *Harness) {
	const n = 2000
	tx, rx := pair(t, h)
	ctrlTx, ctrlRx := pair(t, h)
	p := startPeer(t, h, "recv", nil, false, map[string]Passable{"in": rx})
	ctx := testCtx(t)
	var buf []byte
	seq, lost := uint64(0), 0
	sent := func() { seq++ }
	received := func([]byte) { lost++ }
	for seq < n {
		if seq%5 == 0 {
			// Make the receive case ready now and then; whether this
			// TrySend finds room does not matter.
			ctrlTx.TrySend(makeMsg(nil, 1, seq, 1))
		}
		buf = makeMsg(buf, 0, seq, sizeFor(seq, h.maxMessage()))
		if i, err := ipcchan.Select(ctx, ipcchan.OnSend(tx, buf, sent), ipcchan.OnRecv(ctrlRx, received)); err != nil {
			t.Fatalf("Select = %d, %v after %d sent", i, err, seq)
		}
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	p.wait()
	if got, want := p.output(), "received "+itoa(n); got != want {
		t.Fatalf("child says %q, want %q", got, want)
	}
	// About n/10 races went either way; none lost is 2^-(n/10) likely.
	if lost == 0 {
		t.Fatal("the receive case never won: losing send cases went unchecked")
	}
	t.Logf("the receive case won %d times", lost)
}

// A send case on a full transport whose Select ends with its context sends
// nothing: the child receives exactly the values sent before.
func testSelectSendCancelled(t *testing.T, h *Harness) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "recv", map[string]string{envWait: "1"}, false, map[string]Passable{"in": rx})
	sent := fill(t, tx, 0, 1000)
	ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Millisecond)
	defer cancel()
	i, err := ipcchan.Select(ctx, ipcchan.OnSend(tx, makeMsg(nil, 0, uint64(sent), 1000), func() { sent++ }))
	switch {
	case i == 0 && err == nil: // room appeared; the value counts
	case i == -1 && err == context.DeadlineExceeded:
	default:
		t.Fatalf("Select on a full transport = %d, %v", i, err)
	}
	p.signal()
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	p.wait()
	if got, want := p.output(), "received "+itoa(sent); got != want {
		t.Fatalf("child says %q, want %q", got, want)
	}
}
