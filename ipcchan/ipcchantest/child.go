package ipcchantest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ipcchan/go/ipcchan"
)

// Environment of a child process started by the suite.
const (
	envRole    = "IPCCHANTEST_ROLE"    // "<harness>/<role>"
	envCount   = "IPCCHANTEST_COUNT"   // messages to send (per goroutine)
	envID      = "IPCCHANTEST_ID"      // sender id
	envWorkers = "IPCCHANTEST_WORKERS" // goroutines sharing one Sender
	envWait    = "IPCCHANTEST_WAIT"    // "1": read a line from stdin before starting
	envHold    = "IPCCHANTEST_HOLD"    // "1": read a line from stdin before closing
	envShared  = "IPCCHANTEST_SHARED"  // "1": take the Sender with Harness.SharedOpts
	envLimit   = "IPCCHANTEST_LIMIT"   // largest message size
	envSize    = "IPCCHANTEST_SIZE"    // every message's size, if set (capped by the limit)
	envFor     = "IPCCHANTEST_FOR"     // stress-send: how long to send
	envJoin    = "IPCCHANTEST_JOIN"    // send: open the Sender with Harness.JoinSender on this name
)

// Child runs this process as a peer of the suite if the suite started it,
// and then exits; otherwise it returns at once. Call it first in TestMain,
// with every harness the package's tests run.
func Child(harnesses ...*Harness) {
	role, ok := os.LookupEnv(envRole)
	if !ok {
		return
	}
	for _, h := range harnesses {
		if r, ok := cutHarness(role, h.Name); ok {
			if err := runChild(h, r); err != nil {
				fmt.Fprintf(os.Stderr, "ipcchantest child %s: %v\n", role, err)
				os.Exit(1)
			}
			os.Exit(0)
		}
	}
	fmt.Fprintf(os.Stderr, "ipcchantest: no harness for %s=%q\n", envRole, role)
	os.Exit(2)
}

func cutHarness(role, name string) (string, bool) {
	if len(role) > len(name) && role[:len(name)] == name && role[len(name)] == '/' {
		return role[len(name)+1:], true
	}
	return "", false
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

var stdin = bufio.NewReader(os.Stdin)

// waitLine blocks until the parent writes a line to stdin or closes it.
func waitLine() { stdin.ReadString('\n') }

// childRoles are the parts a re-executed child plays, by role.
var childRoles = map[string]func(ctx context.Context, h *Harness) error{
	"send":            childSend,
	"stress-send":     childStressSend,
	"send-goroutines": childSendGoroutines,
	"send-lookalikes": childSendLookalikes,
	"send-two":        childSendTwo,
	"recv":            childRecv,
}

func runChild(h *Harness, role string) error {
	if os.Getenv(envWait) == "1" {
		waitLine()
	}
	play := childRoles[role]
	if play == nil {
		return fmt.Errorf("unknown role %q", role)
	}
	return play(context.Background(), h)
}

// childSend sends a numbered sequence on the end handed down as "out" (or
// joined by name), then closes it.
func childSend(ctx context.Context, h *Harness) error {
	var opts []ipcchan.Option
	if os.Getenv(envShared) == "1" {
		opts = h.SharedOpts
	}
	var tx *ipcchan.Sender[[]byte]
	var err error
	if name := os.Getenv(envJoin); name != "" {
		tx, err = h.JoinSender(name, opts...)
	} else {
		tx, err = h.TakeSender("out", opts...)
	}
	if err != nil {
		return err
	}
	limit := envInt(envLimit, h.maxMessage())
	if size := envInt(envSize, 0); size > 0 {
		limit = -min(size, limit) // negative: every message this size
	}
	err = sendSeq(ctx, tx, uint32(envInt(envID, 0)), envInt(envCount, 0), limit)
	if os.Getenv(envHold) == "1" {
		waitLine()
	}
	if cerr := tx.Close(); err == nil {
		err = cerr
	}
	return err
}

// childStressSend has several goroutines share one Sender (taken as a
// shared end) and send until the time is up; each then reports "id count".
func childStressSend(ctx context.Context, h *Harness) error {
	tx, err := h.TakeSender("out", h.SharedOpts...)
	if err != nil {
		return err
	}
	d, err := time.ParseDuration(os.Getenv(envFor))
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d)
	workers, base := envInt(envWorkers, 4), envInt(envID, 0)*16
	counts := make([]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var buf []byte
			for seq := uint64(0); time.Now().Before(deadline); seq++ {
				buf = makeMsg(buf, uint32(base+w), seq, sizeFor(seq, envInt(envLimit, h.maxMessage())))
				if errs[w] = tx.Send(ctx, buf); errs[w] != nil {
					return
				}
				counts[w]++
			}
		})
	}
	wg.Wait()
	if err := tx.Close(); err != nil {
		return err
	}
	for w := range workers {
		if errs[w] != nil {
			return errs[w]
		}
		fmt.Printf("%d %d\n", base+w, counts[w])
	}
	return nil
}

// childSendGoroutines sends one sequence per goroutine on one Sender.
func childSendGoroutines(ctx context.Context, h *Harness) error {
	tx, err := h.TakeSender("out")
	if err != nil {
		return err
	}
	workers, n := envInt(envWorkers, 4), envInt(envCount, 0)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { errs[w] = sendSeq(ctx, tx, uint32(w), n, envInt(envLimit, h.maxMessage())) })
	}
	wg.Wait()
	if err := tx.Close(); err != nil {
		return err
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// childSendLookalikes sends values that look like end-of-stream markers.
func childSendLookalikes(ctx context.Context, h *Harness) error {
	return sendLookalikes(ctx, h)
}

// childSendTwo sends alternately on two ends, "a" and "b".
func childSendTwo(ctx context.Context, h *Harness) error {
	a, err := h.TakeSender("a")
	if err != nil {
		return err
	}
	b, err := h.TakeSender("b")
	if err != nil {
		return err
	}
	n := envInt(envCount, 0)
	var buf []byte
	for seq := range uint64(n) {
		buf = makeMsg(buf, 1, seq, 64)
		if err := a.Send(ctx, buf); err != nil {
			return err
		}
		buf = makeMsg(buf, 2, seq, 64)
		if err := b.Send(ctx, buf); err != nil {
			return err
		}
	}
	if err := a.Close(); err != nil {
		return err
	}
	return b.Close()
}

// childRecv receives and checks everything on "in", and reports the count.
func childRecv(ctx context.Context, h *Harness) error {
	rx, err := h.TakeReceiver("in")
	if err != nil {
		return err
	}
	defer rx.Close()
	tr := newTracker()
	for m, err := range rx.All(ctx) {
		if err != nil {
			return fmt.Errorf("after %d messages: %w", tr.n, err)
		}
		if err := tr.add(m); err != nil {
			return err
		}
	}
	fmt.Printf("received %d\n", tr.n)
	return nil
}

// sendSeq sends n messages of sender id (forever if n < 0).
func sendSeq(ctx context.Context, tx *ipcchan.Sender[[]byte], id uint32, n, limit int) error {
	var buf []byte
	for seq := uint64(0); n < 0 || seq < uint64(n); seq++ {
		size := -limit // a negative limit is a fixed size
		if limit > 0 {
			size = sizeFor(seq, limit)
		}
		buf = makeMsg(buf, id, seq, size)
		if err := tx.Send(ctx, buf); err != nil {
			return fmt.Errorf("send %d/%d: %w", id, seq, err)
		}
	}
	return nil
}
