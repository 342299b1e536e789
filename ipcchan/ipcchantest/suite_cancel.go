package ipcchantest

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
)

// cancelAfter cancels a context after d and returns it with the channel
// that receives the moment of cancellation.
func cancelAfter(parent context.Context, d time.Duration) (context.Context, <-chan time.Time) {
	ctx, cancel := context.WithCancel(parent)
	at := make(chan time.Time, 1)
	time.AfterFunc(d, func() {
		at <- time.Now()
		cancel()
	})
	return ctx, at
}

// A blocked Recv returns ctx.Err() promptly and takes nothing: the message
// sent afterwards is the first one received.
func testCancelRecv(t *testing.T, h *Harness) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", map[string]string{envCount: "1", envWait: "1"}, false, map[string]Passable{"out": tx})
	ctx := testCtx(t)

	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err := rx.Recv(dctx)
	cancel()
	if err != context.DeadlineExceeded {
		t.Fatalf("Recv past a deadline = %v, want context.DeadlineExceeded", err)
	}

	cctx, at := cancelAfter(ctx, 20*time.Millisecond)
	_, err = rx.Recv(cctx)
	late := time.Since(<-at)
	if err != context.Canceled {
		t.Fatalf("cancelled Recv = %v, want context.Canceled", err)
	}
	// How soon is logged, not asserted: a timed test fails on a loaded
	// machine, not on a slow cancel (a cancel never seen hangs the test).
	t.Logf("cancelled Recv returned %v after the cancel", late)

	done, stop := context.WithCancel(ctx)
	stop()
	if _, err := rx.Recv(done); err != context.Canceled {
		t.Fatalf("Recv with a done context = %v, want context.Canceled", err)
	}

	p.signal()
	m, err := rx.Recv(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, seq, err := checkMsg(m); err != nil || seq != 0 {
		t.Fatalf("first message after the cancels: seq %d, %v", seq, err)
	}
	if _, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv = %v, want io.EOF", err)
	}
	p.wait()
}

// fill sends with TrySend until the transport is full and stays full for a
// moment (a sender may still be moving queued messages into the kernel),
// and returns how many messages went. The first is seq first.
func fill(t *testing.T, tx *ipcchan.Sender[[]byte], first uint64, size int) int {
	t.Helper()
	var buf []byte
	n, refused := 0, 0
	for refused < 3 {
		buf = makeMsg(buf, 0, first+uint64(n), size)
		switch err := tx.TrySend(buf); err {
		case nil:
			n++
			refused = 0
		case ipcchan.ErrWouldBlock:
			refused++
			time.Sleep(10 * time.Millisecond)
		default:
			t.Fatalf("TrySend: %v", err)
		}
		if n > 1<<20 {
			t.Fatal("the transport never filled up")
		}
	}
	return n
}

// A blocked Send returns ctx.Err() promptly and has sent nothing; a
// cancelled Send of a large message sends all of it or none. The child
// checks that exactly the messages whose Send returned nil arrive, whole.
func testCancelSend(t *testing.T, h *Harness) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "recv", map[string]string{envWait: "1"}, false, map[string]Passable{"in": rx})
	ctx := testCtx(t)
	sent := fill(t, tx, 0, 1000)

	cctx, at := cancelAfter(ctx, 20*time.Millisecond)
	err := tx.Send(cctx, makeMsg(nil, 0, uint64(sent), 1000))
	late := time.Since(<-at)
	switch {
	case err == nil:
		sent++ // room appeared; it counts
	case err == context.Canceled:
		t.Logf("cancelled Send returned %v after the cancel", late)
	default:
		t.Fatalf("cancelled Send = %v", err)
	}

	big := min(256<<10, h.maxMessage())
	cctx, _ = cancelAfter(ctx, 10*time.Millisecond)
	switch err := tx.Send(cctx, makeMsg(nil, 0, uint64(sent), big)); err {
	case nil:
		sent++
	case context.Canceled:
	default:
		t.Fatalf("cancelled large Send = %v", err)
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

// TryRecv on an empty channel and TrySend on a full one say ErrWouldBlock.
func testTry(t *testing.T, h *Harness) {
	// The test ends with the transport full: Close must not linger.
	tx, rx := pair(t, h, ipcchan.WithLinger(50*time.Millisecond))
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("TryRecv on an empty channel = %v, want ErrWouldBlock", err)
	}
	msg := makeMsg(nil, 0, 0, 100)
	if err := tx.TrySend(msg); err != nil {
		t.Fatalf("TrySend = %v", err)
	}
	if err := tx.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(suiteTimeout)
	for {
		m, err := rx.TryRecv()
		if err == ipcchan.ErrWouldBlock && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond) // the kernel may not show it yet on every transport
			continue
		}
		if err != nil {
			t.Fatalf("TryRecv = %v", err)
		}
		if _, seq, err := checkMsg(m); err != nil || seq != 0 {
			t.Fatalf("TryRecv got seq %d, %v", seq, err)
		}
		break
	}
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("TryRecv after the only message = %v, want ErrWouldBlock", err)
	}
	n := fill(t, tx, 1, 1000)
	t.Logf("the transport held %d messages of 1000 bytes", n)
}

// Close wakes a blocked Recv and a blocked Send with os.ErrClosed.
func testCloseWhileBlocked(t *testing.T, h *Harness) {
	ctx := testCtx(t)
	t.Run("Recv", func(t *testing.T) {
		tx, rx := pair(t, h)
		p := startPeer(t, h, "send", map[string]string{envCount: "0", envWait: "1"}, false, map[string]Passable{"out": tx})
		errc := make(chan error, 1)
		go func() {
			_, err := rx.Recv(ctx)
			errc <- err
		}()
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		rx.Close()
		checkClosed(t, errc, start)
		if _, err := rx.Recv(ctx); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Recv after Close = %v, want os.ErrClosed", err)
		}
		p.signal()
		p.exit() // its write may fail now that nobody reads
	})
	t.Run("Send", func(t *testing.T) {
		skipIf(t, h, "CloseWhileBlocked/Send")
		tx, rx := pair(t, h, ipcchan.WithLinger(50*time.Millisecond))
		p := startPeer(t, h, "recv", map[string]string{envWait: "1"}, false, map[string]Passable{"in": rx})
		fill(t, tx, 0, 1000)
		errc := make(chan error, 1)
		go func() { errc <- tx.Send(ctx, makeMsg(nil, 0, 1<<40, 1000)) }()
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		tx.Close()
		checkClosed(t, errc, start)
		if err := tx.Send(ctx, nil); !errors.Is(err, os.ErrClosed) {
			t.Errorf("Send after Close = %v, want os.ErrClosed", err)
		}
		p.kill()
	})
}

func checkClosed(t *testing.T, errc <-chan error, start time.Time) {
	t.Helper()
	select {
	case err := <-errc:
		late := time.Since(start)
		t.Logf("blocked call returned %v after Close", late)
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("blocked call = %v, want os.ErrClosed", err)
		}
	case <-time.After(suiteTimeout):
		t.Fatal("Close did not wake the blocked call")
	}
}

// A value the Chan goroutine read ahead is handed to the next Recv.
func testChanReadAhead(t *testing.T, h *Harness) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", map[string]string{envCount: "3", envHold: "1"}, false, map[string]Passable{"out": tx})
	ctx := testCtx(t)
	cctx, cancel := context.WithCancel(ctx)
	ch := ipcchan.Chan(cctx, rx)
	expectSeq(t, <-ch, 0)
	time.Sleep(50 * time.Millisecond) // the goroutine reads message 1 and waits to deliver it
	cancel()
	for m := range ch {
		t.Fatalf("channel delivered %x after its context ended", m[:msgHeader])
	}
	if err := rx.Err(); err != context.Canceled {
		t.Errorf("Err() = %v, want context.Canceled", err)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		m, err := rx.Recv(ctx)
		if err != nil {
			t.Fatal(err)
		}
		expectSeq(t, m, seq)
	}
	p.signal()
	if _, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv = %v, want io.EOF", err)
	}
	p.wait()
}

func expectSeq(t *testing.T, m []byte, want uint64) {
	t.Helper()
	if _, seq, err := checkMsg(m); err != nil || seq != want {
		t.Fatalf("got message %d (%v), want %d", seq, err, want)
	}
}

// A sender killed mid-stream: every whole message before the kill arrives,
// in order, then the stream ends cleanly.
func testSenderKilled(t *testing.T, h *Harness) {
	killSenderAfter(t, h, map[string]string{envCount: "-1"}, 2000)
}

// killSenderAfter starts a sending child with env, receives n messages,
// kills the child, and checks that every message still arriving is whole
// and in order and that the stream then ends cleanly (isEnd).
func killSenderAfter(t *testing.T, h *Harness, env map[string]string, n int) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", env, false, map[string]Passable{"out": tx})
	if h.WatchPeer {
		if err := rx.WatchPeer(p.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	ctx := testCtx(t)
	tr := newTracker()
	var buf []byte
	for tr.n < n {
		if err := rx.RecvInto(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		if err := tr.add(buf); err != nil {
			t.Fatal(err)
		}
	}
	p.kill()
	for {
		err := rx.RecvInto(ctx, &buf)
		if err != nil {
			if !isEnd(err) {
				t.Fatalf("after the kill, %d messages: %v", tr.n, err)
			}
			t.Logf("%d whole messages, then %v", tr.n, err)
			break
		}
		if err := tr.add(buf); err != nil {
			t.Fatal(err)
		}
	}
	p.exit()
}

// A receiver killed mid-stream: Send reports ErrPeerGone rather than hang.
func testReceiverKilled(t *testing.T, h *Harness) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "recv", nil, false, map[string]Passable{"in": rx})
	if h.WatchPeer {
		if err := tx.WatchPeer(p.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	ctx := testCtx(t)
	var buf []byte
	for seq := uint64(0); ; seq++ {
		if seq == 2000 {
			p.kill()
			p.exit()
		}
		buf = makeMsg(buf, 0, seq, 200)
		err := tx.Send(ctx, buf)
		if err == nil {
			continue
		}
		if seq < 2000 || !errors.Is(err, ipcchan.ErrPeerGone) {
			t.Fatalf("Send %d = %v, want ErrPeerGone after the kill", seq, err)
		}
		t.Logf("Send %d: %v", seq, err)
		return
	}
}

// A sender killed before its first message, holding its end open: the
// receiver ends cleanly, without a message and without hanging.
func testSenderKilledBeforeFirst(t *testing.T, h *Harness) {
	tx, rx := pair(t, h)
	p := startPeer(t, h, "send", map[string]string{envCount: "0", envHold: "1"}, false, map[string]Passable{"out": tx})
	if h.WatchPeer {
		if err := rx.WatchPeer(p.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	ctx := testCtx(t)
	time.Sleep(20 * time.Millisecond) // let it take its end
	p.kill()
	v, err := rx.Recv(ctx)
	if !isEnd(err) {
		t.Fatalf("Recv = %q, %v; want a clean end", v, err)
	}
	t.Logf("no message, then %v", err)
	p.exit()
}

// A sender of large messages killed while it writes one (after 20, the
// transport full, it is blocked inside a write): every message that
// arrives is whole (tracker checks each byte), and the stream then ends
// with io.EOF, io.ErrUnexpectedEOF or ErrPeerGone — never a torn message
// or a hang.
func testSenderKilledMidMessage(t *testing.T, h *Harness) {
	size := strconv.Itoa(min(h.maxMessage(), 256<<10))
	killSenderAfter(t, h, map[string]string{envCount: "-1", envSize: size}, 20)
}

// Close while Sends are blocked on a full transport, then the receiver
// drains it: every Send that returned nil has its value delivered, and no
// Send that returned an error has (it returns os.ErrClosed having sent
// nothing). The receiving child counts what arrived before the end of
// stream. (A Send blocked during Close once went through after the
// end-of-stream marker, so it returned nil and its value was dropped.)
func testCloseWhileSending(t *testing.T, h *Harness) {
	const goroutines = 4
	for round := range 3 {
		tx, rx := pair(t, h)
		p := startPeer(t, h, "recv", map[string]string{envWait: "1"}, false, map[string]Passable{"in": rx})
		ctx := testCtx(t)
		acked := fill(t, tx, 0, 1000)
		counts := make([]int, goroutines)
		errs := make([]error, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				var buf []byte
				for seq := uint64(0); ; seq++ {
					buf = makeMsg(buf, uint32(g+1), seq, 1000)
					if err := tx.Send(ctx, buf); err != nil {
						errs[g] = err
						return
					}
					counts[g]++
				}
			})
		}
		time.Sleep(20 * time.Millisecond) // the Sends block on the full transport
		closed := make(chan error, 1)
		go func() { closed <- tx.Close() }()
		time.Sleep(time.Duration(round) * 5 * time.Millisecond)
		p.signal() // the child drains: room for the blocked Send and the end of stream
		wg.Wait()
		if err := <-closed; err != nil {
			t.Fatalf("Close = %v", err)
		}
		for g, err := range errs {
			if !errors.Is(err, os.ErrClosed) {
				t.Errorf("Send in goroutine %d ended with %v, want os.ErrClosed", g, err)
			}
			acked += counts[g]
		}
		p.wait()
		if got, want := p.output(), "received "+itoa(acked); got != want {
			t.Fatalf("round %d: child says %q; Sends that returned nil: %d", round, got, acked)
		}
	}
}
