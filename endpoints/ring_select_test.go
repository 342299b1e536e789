package endpoints_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

func init() {
	// send-lines takes the ring Sender handed down as "out" and sends
	// each line read from stdin on it, until stdin ends.
	childRoles["send-lines"] = func() error {
		tx, err := endpoints.InheritSender[string]("out")
		if err != nil {
			return err
		}
		defer tx.Close()
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if err := tx.Send(context.Background(), sc.Text()); err != nil {
				return err
			}
		}
		return sc.Err()
	}
}

// awaitCond waits, bounded, until cond holds.
func awaitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// A Select on a ring that RingPair made — alone, and with a pipe — waits
// on the ring's doorbell: it wakes when another process sends after the
// Select has parked, and it makes no timed polling round doing so.
func TestRingSelectWaitsOnDoorbell(t *testing.T) {
	for _, withPipe := range []bool{false, true} {
		t.Run(fmt.Sprintf("withPipe=%v", withPipe), func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			tx, rx, err := endpoints.RingPair[string](256 + 4096)
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			if _, ok := rx.Transport().(transport.Doorbell); !ok {
				t.Fatalf("the Receiver's transport %T has no doorbell: a Select would poll it", rx.Transport())
			}
			ptx, prx, err := endpoints.PipePair[string]()
			if err != nil {
				t.Fatal(err)
			}
			defer ptx.Close()
			defer prx.Close()
			parked, release := ringWord(t, rx, ringRWait)
			defer release()

			cmd := helperCmd(t, "send-lines")
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := endpoints.Start(cmd, endpoints.Pass("out", tx)); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer in.Close()

			polls := poller.SelectPolls.Load()
			for i := range 3 {
				var got string
				cases := []ipcchan.Case{ipcchan.OnRecv(rx, func(v string) { got = v })}
				if withPipe {
					cases = append(cases, ipcchan.OnRecv(prx, func(v string) { t.Errorf("pipe delivered %q", v) }))
				}
				type result struct {
					k   int
					err error
				}
				done := make(chan result, 1)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				go func() {
					k, err := ipcchan.Select(ctx, cases...)
					done <- result{k, err}
				}()
				awaitCond(t, "the Select to park on the ring", parked)
				want := "wake " + strconv.Itoa(i)
				fmt.Fprintln(in, want)
				res := <-done
				cancel()
				if res.err != nil || res.k != 0 || got != want {
					t.Fatalf("Select = %d, %v, got %q; want 0, nil, %q", res.k, res.err, got, want)
				}
			}
			if n := poller.SelectPolls.Load() - polls; n != 0 {
				t.Fatalf("the Selects made %d timed polling rounds; want none (they wait on the doorbell)", n)
			}
		})
	}
}

// threads returns the number of OS threads of this process.
func threads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// A receiver parked on an empty ring holds no OS thread: 50 of them add
// far fewer than 50 threads to the process.
func TestRingParkedReceiverHoldsNoThread(t *testing.T) {
	ipcchantest.CheckFDs(t)
	const n = 50
	var txs []*ipcchan.Sender[string]
	var rxs []*ipcchan.Receiver[string]
	var flags []func() bool
	for range n {
		tx, rx, err := endpoints.RingPair[string](256 + 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		defer rx.Close()
		parked, release := ringWord(t, rx, ringRWait)
		defer release()
		txs, rxs, flags = append(txs, tx), append(rxs, rx), append(flags, parked)
	}
	before := threads(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, rx := range rxs {
		wg.Go(func() {
			v, err := rx.Recv(ctx)
			if err == nil && v != strconv.Itoa(i) {
				err = fmt.Errorf("receiver %d got %q", i, v)
			}
			errs <- err
		})
	}
	for i, parked := range flags {
		awaitCond(t, fmt.Sprintf("receiver %d to park", i), parked)
	}
	during := threads(t)
	for i, tx := range txs {
		if err := tx.Send(ctx, strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if during-before >= n/2 {
		t.Fatalf("%d parked receivers took the process from %d to %d threads; want no thread per parked receiver", n, before, during)
	}
}

// A Select that must poll (a ring on a named mapping has no doorbell)
// polls less and less often while nothing happens — every millisecond at
// first, every 50 ms after a fifth of a second — so that an idle Select
// costs little; and a value sent after a long idle spell is still
// received. (Half a second at one round per millisecond is about 500
// rounds; backing off, about 24. The bound is far from both.)
func TestSelectPollBacksOff(t *testing.T) {
	m, err := endpoints.CreateShm(endpoints.ObjectName("poll-backoff"), 256+4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove()
	defer m.Close()
	if err := endpoints.FormatRing(m); err != nil {
		t.Fatal(err)
	}
	tx, err := endpoints.RingSender[string](m)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx, err := endpoints.RingReceiver[string](m)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got := make(chan string, 1)
	errc := make(chan error, 1)
	polls := poller.SelectPolls.Load()
	go func() {
		_, err := ipcchan.Select(ctx, ipcchan.OnRecv(rx, func(v string) { got <- v }))
		errc <- err
	}()
	time.Sleep(500 * time.Millisecond) // the idle spell under test
	rounds := poller.SelectPolls.Load() - polls
	t.Logf("%d polling rounds in 0.5 s of idling", rounds)
	if rounds > 100 {
		t.Errorf("%d polling rounds in 0.5 s of idling: the Select does not back off", rounds)
	}
	if err := tx.Send(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Select = %v", err)
	}
	if v := <-got; v != "late" {
		t.Fatalf("Select received %q, want %q", v, "late")
	}
}
