package ipcchantest

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ipcchan/go/ipcchan"
)

// EnvEndRounds is the environment variable that sets how many short-lived
// senders EndIsReal starts per endpoint (each against a fresh receiver);
// unset, 20 (well under a second per endpoint with -race).
const EnvEndRounds = "IPCCHANTEST_END_ROUNDS"

const (
	defaultEndRounds = 20
	endValues        = 3      // values each short-lived sender sends
	endPolls         = 5000   // TryRecvs of an idle receiver under signals
	endStormRounds   = 300    // rounds of signals against a blocked Recv
	endValueSize     = 64     // bytes per value
	endRoundsLimit   = 100000 // a sanity bound on EnvEndRounds
)

// End is real: a stream ends only when the kernel says every sender hung
// up and nothing is left to read (or after every end-of-stream marker),
// never because a sender was quick or a wait was interrupted.
func testEndIsReal(t *testing.T, h *Harness) {
	t.Run("ShortLivedSenders", func(t *testing.T) {
		skipIf(t, h, "EndIsReal/ShortLivedSenders")
		testShortLivedSenders(t, h)
	})
	t.Run("SignalStorm", func(t *testing.T) {
		skipIf(t, h, "EndIsReal/SignalStorm")
		testSignalStorm(t, h)
	})
}

// Senders in processes that send a few values and exit at once, each to a
// fresh receiver (on endpoints with Late, every other one reaching it by
// name after it opened): every value arrives, then the end.
func testShortLivedSenders(t *testing.T, h *Harness) {
	rounds := defaultEndRounds
	if v := os.Getenv(EnvEndRounds); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > endRoundsLimit {
			t.Fatalf("%s=%q: want a count from 1 to %d", EnvEndRounds, v, endRoundsLimit)
		}
		rounds = n
	}
	ctx := testCtx(t)
	for i := range rounds {
		rx, p, done := idleReceiver(t, h, i%2 == 1, map[string]string{envID: itoa(i)})
		tr, err := recvAll(ctx, rx)
		done()
		if err != nil {
			t.Fatalf("round %d (%s): after %d values: %v", i, p.how, tr.n, err)
		}
		if tr.n != endValues {
			t.Fatalf("round %d (%s): the stream ended after %d of %d values", i, p.how, tr.n, endValues)
		}
		p.wait()
	}
}

// A receiver that nothing has been sent to (no sender has even reached it,
// on endpoints with Late) gets thousands of signals, to every thread of its
// process, while it polls with TryRecv and then while it is blocked in
// Recv: it reports neither the end nor an error. Then its sender sends,
// and every value arrives, then the end.
func testSignalStorm(t *testing.T, h *Harness) {
	ctx := testCtx(t)
	rx, p, done := idleReceiver(t, h, true, map[string]string{envWait: "1"})
	defer done()

	stop := make(chan struct{})
	storm := make(chan int, 1)
	go func() { storm <- SignalStorm(0, stop) }()
	for i := range endPolls {
		if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
			close(stop)
			<-storm
			t.Fatalf("%s: TryRecv with nothing sent, after %d under signals = %v; want ErrWouldBlock", p.how, i, err)
		}
	}
	close(stop)
	sent := <-storm

	type result struct {
		tr  *tracker
		err error
	}
	res := make(chan result, 1)
	go func() {
		tr, err := recvAll(ctx, rx)
		res <- result{tr, err}
	}()
	sent += SignalStorm(endStormRounds, nil)
	select {
	case r := <-res:
		t.Fatalf("%s: with nothing sent, Recv under %d signals ended the stream after %d values: %v", p.how, sent, r.tr.n, r.err)
	default:
	}
	p.signal()
	r := <-res
	if r.err != nil || r.tr.n != endValues {
		t.Fatalf("%s: %d of %d values, then %v", p.how, r.tr.n, endValues, r.err)
	}
	p.wait()
	t.Logf("%s: %d signals, then every value and the end", p.how, sent)
}

// endPeer is the child sending to an idle receiver, and how it reached it.
type endPeer struct {
	*peer
	how string
}

// idleReceiver opens a fresh receiver and starts a child that sends it
// endValues values, then closes and exits (after a line on its stdin if
// env says envWait). With late set and a harness that has Late, the child
// reaches the receiver by name; otherwise the receiver comes from Pair and
// the child takes the sender from this process. done closes the receiver
// and removes what Late made.
func idleReceiver(t *testing.T, h *Harness, late bool, env map[string]string) (*ipcchan.Receiver[[]byte], *endPeer, func()) {
	t.Helper()
	env[envCount] = itoa(endValues)
	env[envSize] = itoa(endValueSize)
	// Under the race detector a process sleeps a second before it exits
	// (atexit_sleep_ms): not the short life this is about.
	env["GORACE"] = strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	if late && h.Late != nil {
		rx, name, remove, err := h.Late()
		if err != nil {
			t.Fatal(err)
		}
		done := sync.OnceFunc(func() { rx.Close(); remove() })
		t.Cleanup(done)
		env[envJoin] = name
		p := startPeer(t, h, "send", env, false, nil)
		return rx, &endPeer{p, "a sender that came after the receiver"}, done
	}
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", env, false, map[string]Passable{"out": tx})
	return rx, &endPeer{p, "a sender handed to the child"}, func() { rx.Close() }
}
