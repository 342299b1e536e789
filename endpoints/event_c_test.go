package endpoints_test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// TestEventC: testdata/event.c, a peer written from PROTOCOL.md §14 alone,
// and a Go process wake each other through two events, round after round:
// the C waiter sleeps on the futex and the Go Notify wakes it, the C
// notifier follows the wake rule and wakes the Go waiter. The C program
// counts its futex waits that ran to their 10 s timeout instead of being
// woken: a lost wake-up, which must not happen.
func TestEventC(t *testing.T) {
	bin := cPeer(t, "event") // first: a skip leaves nothing open
	ipcchantest.CheckFDs(t)
	// A wake-up the C notifier failed to give the Go waiter must show
	// as a timeout, not as a wait for the recheck.
	defer endpoints.SetEventRecheck(eventTimeout)()
	ping, pong := newTestEvent(t), newTestEvent(t)
	const rounds = 500
	cmd := exec.Command(bin, strconv.Itoa(rounds))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := endpoints.Start(cmd, endpoints.Share("ping", ping), endpoints.Share("pong", pong)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ctx := eventCtx(t)
	var seen uint64
	for i := range uint64(rounds) {
		if _, err := ping.Notify(1); err != nil {
			t.Fatal(err)
		}
		n, err := pong.WaitCount(ctx, seen)
		if err != nil || n != i+1 {
			t.Fatalf("round %d: the C peer's count %d, %v", i, n, err)
		}
		seen = n
	}
	bits, err := pong.WaitTake(ctx)
	if err != nil || bits != 1<<5 {
		t.Fatalf("WaitTake = %#x, %v", bits, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "timeouts 0\n" {
		t.Fatalf("the C peer: %q, want no futex wait timed out", got)
	}
}
