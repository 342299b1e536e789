package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// envFIFOWriters sets how many short-lived writer processes
// TestFIFOShortLivedWriters starts (each against a fresh receiver); unset,
// defaultFIFOWriters, which keeps the test well under 30 s with -race.
const envFIFOWriters = "IPCCHAN_FIFO_WRITERS"

const defaultFIFOWriters = 2000

// errFalseEOF marks a stream that ended with frames of its writer unread.
var errFalseEOF = errors.New("io.EOF before the writer's last frame")

// Thousands of short-lived C writers (testdata/fifo_burst.c), each against
// a fresh FIFO receiver opened before the writer starts: the writer opens
// the FIFO, writes three whole frames and exits, often before the receiver
// has looked. Every frame must arrive, then io.EOF: a hang-up seen together
// with readable data, or a poll interrupted by a signal (SIGCHLD from the
// writer's own exit, the runtime's SIGURG), is not the end.
func TestFIFOShortLivedWriters(t *testing.T) {
	bin := cPeer(t, "fifo_burst")
	ipcchantest.CheckFDs(t)
	n := defaultFIFOWriters
	if v := os.Getenv(envFIFOWriters); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive count", envFIFOWriters, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	// Two streams at a time: the machine's other work (and the other
	// stream) gets between a receiver's read and its poll, where the races
	// are.
	const workers = 2
	var (
		next             atomic.Int64
		falseEOF, failed atomic.Int64
		mu               sync.Mutex
		firstErr         error
		wg               sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				path := filepath.Join(dir, fmt.Sprintf("w%d-%d", w, i))
				err := shortFIFOStream(ctx, bin, path, strconv.FormatInt(i, 10))
				if err == nil {
					continue
				}
				if errors.Is(err, errFalseEOF) {
					falseEOF.Add(1)
				} else {
					failed.Add(1)
				}
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatalf("ran out of time after %d of %d streams", next.Load(), n)
	}
	if f, e := falseEOF.Load(), failed.Load(); f+e > 0 {
		t.Fatalf("%d of %d streams ended early (false io.EOF), %d failed otherwise; first: %v", f, n, e, firstErr)
	}
}

// shortFIFOStream makes a FIFO at path, opens a receiver on it, starts
// fifo_burst to write three frames, and checks that all three arrive, then
// io.EOF.
func shortFIFOStream(ctx context.Context, bin, path, id string) (err error) {
	const frames = 3
	if err := endpoints.CreateFIFO(path); err != nil {
		return err
	}
	defer endpoints.RemoveFIFO(path)
	// A C writer sends no hello.
	rx, err := endpoints.OpenFIFOReceiver[[]byte](ctx, path, ipcchan.WithHandshake(false))
	if err != nil {
		return err
	}
	defer rx.Close()
	cmd := exec.CommandContext(ctx, bin, path, id, strconv.Itoa(frames))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cmd.Process.Kill() // it may still wait in open for a reader now gone
		}
		if werr := cmd.Wait(); err == nil && werr != nil {
			err = fmt.Errorf("writer %s: %w", id, werr)
		}
	}()
	for i := range frames {
		v, err := rx.Recv(ctx)
		if err == io.EOF {
			return fmt.Errorf("writer %s: %w: after %d of %d frames", id, errFalseEOF, i, frames)
		}
		if err != nil {
			return fmt.Errorf("writer %s, frame %d: %w", id, i, err)
		}
		if want := id + "/" + strconv.Itoa(i); string(v) != want {
			return fmt.Errorf("writer %s: frame %q, want %q", id, v, want)
		}
	}
	if v, err := rx.Recv(ctx); err != io.EOF {
		return fmt.Errorf("writer %s: after the last frame Recv = %q, %v; want io.EOF", id, v, err)
	}
	return nil
}

// The FIFO storm test's size: TryRecvs under signals, then rounds of
// signals (each: SIGURG to every thread, SIGWINCH and SIGCHLD to the
// process) against a blocked Recv.
const stormPolls, stormRounds = 50_000, 500

// An idle FIFO receiver, no writer having come yet, under thousands of
// signals: first while it polls with TryRecv, then while it is blocked in
// Recv. It never reports the end of the stream or an error (an interrupted
// poll is no hang-up); then a writer process comes and every value
// arrives, then io.EOF.
func TestFIFOIdleReceiverSignalStorm(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	path := fifoPath(t)
	rx, err := endpoints.OpenFIFOReceiver[job](ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()

	stop := make(chan struct{})
	storm := make(chan int, 1)
	go func() { storm <- ipcchantest.SignalStorm(0, stop) }()
	for i := range stormPolls {
		if j, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
			close(stop)
			<-storm
			t.Fatalf("TryRecv with no writer yet, after %d polls under signals = %+v, %v; want ErrWouldBlock", i, j, err)
		}
	}
	close(stop)
	sent := <-storm

	type result struct {
		j   job
		err error
	}
	first := make(chan result, 1)
	go func() {
		j, err := rx.Recv(ctx)
		first <- result{j, err}
	}()
	sent += ipcchantest.SignalStorm(stormRounds, nil)
	select {
	case r := <-first:
		t.Fatalf("Recv with no writer yet returned %+v, %v under signals", r.j, r.err)
	default:
	}
	t.Logf("%d TryRecvs, then a blocked Recv, under %d signals", stormPolls, sent)

	const n = 3
	w := startHelper(t, "fifo-writer", []string{"FIFO_PATH=" + path, "FIFO_N=" + strconv.Itoa(n)})
	r := <-first
	for i := range n {
		if i > 0 {
			r.j, r.err = rx.Recv(ctx)
		}
		if r.err != nil || r.j.ID != int64(i) {
			t.Fatalf("value %d: Recv = %+v, %v", i, r.j, r.err)
		}
	}
	if j, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("after the writer's last value Recv = %+v, %v; want io.EOF", j, err)
	}
	if err := w.wait(); err != nil {
		t.Fatal(err)
	}
}
