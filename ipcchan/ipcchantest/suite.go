package ipcchantest

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
)

// Run runs the conformance suite for h. Each test runs its peer in a child
// process (see [Child]) and checks that no descriptor is left open.
func Run(t *testing.T, h *Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, *Harness)
	}{
		{"Order100k", testOrder100k},
		{"OrderToChild", testOrderToChild},
		{"EndOfStream", testEndOfStream},
		{"ForgedEndOfStream", testForgedEndOfStream},
		{"ConcurrentGoroutines", testConcurrentGoroutines},
		{"ConcurrentProcesses", testConcurrentProcesses},
		{"CancelRecv", testCancelRecv},
		{"CancelSend", testCancelSend},
		{"TryRecvTrySend", testTry},
		{"CloseWhileBlocked", testCloseWhileBlocked},
		{"CloseWhileSending", testCloseWhileSending},
		{"ChanReadAhead", testChanReadAhead},
		{"ChanInLoop", testChanInLoop},
		{"ChanMixed", testChanMixed},
		{"Select", testSelect},
		{"SelectSend", testSelectSend},
		{"SelectSendCancelled", testSelectSendCancelled},
		{"SenderKilled", testSenderKilled},
		{"ReceiverKilled", testReceiverKilled},
		{"SenderKilledBeforeFirst", testSenderKilledBeforeFirst},
		{"SenderKilledMidMessage", testSenderKilledMidMessage},
		{"EndIsReal", testEndIsReal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skipIf(t, h, tt.name)
			CheckFDs(t)
			tt.fn(t, h)
		})
	}
}

// skipIf skips a test the harness says its transport cannot pass.
func skipIf(t *testing.T, h *Harness, name string) {
	if why, ok := h.Skip[name]; ok {
		t.Skip(why)
	}
}

func pair(t *testing.T, h *Harness, opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte]) {
	t.Helper()
	tx, rx, err := h.Pair(opts...)
	if err != nil {
		t.Fatal(err)
	}
	// The receiver first: a sender closed with frames unread would linger.
	t.Cleanup(func() { rx.Close(); tx.Close() })
	return tx, rx
}

func itoa(n int) string { return strconv.Itoa(n) }

// recvAll receives until the stream ends, checking every message, and
// returns the tracker and the error that ended the stream (nil for io.EOF).
func recvAll(ctx context.Context, rx *ipcchan.Receiver[[]byte]) (*tracker, error) {
	tr := newTracker()
	var buf []byte
	for {
		err := rx.RecvInto(ctx, &buf)
		if err == io.EOF {
			return tr, nil
		}
		if err != nil {
			return tr, err
		}
		if err := tr.add(buf); err != nil {
			return tr, err
		}
	}
}

// The suite's own bound on any wait: generous, so that a slow CI machine
// does not fail it, and finite, so that a hang fails rather than stalls.
const suiteTimeout = 90 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), suiteTimeout)
	t.Cleanup(cancel)
	return ctx
}

// 100,000 messages from a child, in order, whole, none lost or duplicated,
// then io.EOF; read with All to check that a range ends.
func testOrder100k(t *testing.T, h *Harness) {
	const n = 100_000
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", map[string]string{envCount: itoa(n)}, false, map[string]Passable{"out": tx})
	tr := newTracker()
	for m, err := range rx.All(testCtx(t)) {
		if err != nil {
			t.Fatalf("after %d messages: %v", tr.n, err)
		}
		if err := tr.add(m); err != nil {
			t.Fatal(err)
		}
	}
	if tr.n != n {
		t.Fatalf("received %d messages, want %d", tr.n, n)
	}
	p.wait()
}

// The other direction: the child receives and checks.
func testOrderToChild(t *testing.T, h *Harness) {
	const n = 20_000
	tx, rx := pair(t, h)
	p := startPeer(t, h, "recv", nil, false, map[string]Passable{"in": rx})
	if err := sendSeq(testCtx(t), tx, 0, n, h.maxMessage()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	p.wait()
	if got, want := p.output(), "received "+itoa(n); got != want {
		t.Fatalf("child says %q, want %q", got, want)
	}
}

// A sender that closes at once: Recv returns io.EOF, again and again.
func testEndOfStream(t *testing.T, h *Harness) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", map[string]string{envCount: "0"}, false, map[string]Passable{"out": tx})
	ctx := testCtx(t)
	for range 3 {
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("Recv = %v, want io.EOF", err)
		}
	}
	p.wait()
}

// Several goroutines of one child share one Sender.
func testConcurrentGoroutines(t *testing.T, h *Harness) {
	const workers, n = 4, 5000
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send-goroutines", map[string]string{envWorkers: itoa(workers), envCount: itoa(n)},
		false, map[string]Passable{"out": tx})
	tr, err := recvAll(testCtx(t), rx)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, tr, workers, n)
	p.wait()
}

// Several child processes write to one shared end.
func testConcurrentProcesses(t *testing.T, h *Harness) {
	const procs, n = 3, 5000
	// Transports that end a stream with a marker per sender must wait for
	// every child's.
	tx, rx := pair(t, h, h.sendersOpts(procs)...)
	limit := h.sharedLimit()
	var peers []*peer
	for i := range procs {
		env := map[string]string{envCount: itoa(n), envID: itoa(i), envShared: "1", envLimit: itoa(limit)}
		peers = append(peers, startPeer(t, h, "send", env, true, map[string]Passable{"out": tx}))
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	tr, err := recvAll(testCtx(t), rx)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, tr, procs, n)
	for _, p := range peers {
		p.wait()
	}
}

func checkCounts(t *testing.T, tr *tracker, senders, n int) {
	t.Helper()
	for s := range senders {
		if got := tr.next[uint32(s)]; got != uint64(n) {
			t.Errorf("sender %d: %d messages arrived, want %d", s, got, n)
		}
	}
	if tr.n != senders*n {
		t.Errorf("%d messages arrived, want %d", tr.n, senders*n)
	}
}

// isEnd reports whether err is an acceptable end of a stream whose peer died.
func isEnd(err error) bool {
	return err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, ipcchan.ErrPeerGone)
}

// CheckFDs fails t if, when t ends, more descriptors are open in this
// process than when CheckFDs was called.
func CheckFDs(t testing.TB) {
	before := countFDs(t)
	t.Cleanup(func() {
		// Descriptors of exited children may take a moment to go.
		deadline := time.Now().Add(2 * time.Second)
		for {
			after := countFDs(t)
			if after <= before {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("descriptor leak: %d open before, %d after", before, after)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count descriptors: %v", err)
	}
	return len(ents)
}
