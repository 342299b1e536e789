package ipcchantest

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvStress is the environment variable that sets how long each part of
// [Stress] runs (a time.Duration such as "2m"); unset, Stress runs a short
// form fit for every CI run.
const EnvStress = "IPCCHAN_STRESS"

const (
	stressProcs      = 3 // producer processes sharing one end
	stressGoroutines = 3 // goroutines sharing each producer's Sender
	defaultStress    = 300 * time.Millisecond
)

// Stress runs many producers and consumers over h's endpoint for a bounded
// time: stressProcs processes, each sending from stressGoroutines goroutines
// through one Sender, into one Receiver read by one goroutine (which checks
// every producer's order) and then by four (which check that nothing is
// lost or duplicated). Each producer says how many it sent; every message
// is checked byte for byte. Where the harness skips ConcurrentProcesses
// one producer process runs; where it skips ConcurrentGoroutines Stress
// skips (their rules are its own).
func Stress(t *testing.T, h *Harness) {
	d := defaultStress
	if v := os.Getenv(EnvStress); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("%s=%q: %v", EnvStress, v, err)
		}
	}
	for _, consumers := range []int{1, 4} {
		t.Run(fmt.Sprintf("consumers=%d", consumers), func(t *testing.T) {
			skipIf(t, h, "ConcurrentGoroutines")
			procs := stressProcs
			if why, ok := h.Skip["ConcurrentProcesses"]; ok {
				t.Logf("one producer process: %s", why)
				procs = 1
			}
			CheckFDs(t)
			stress(t, h, d, procs, consumers)
		})
	}
}

func stress(t *testing.T, h *Harness, d time.Duration, procs, consumers int) {
	tx, rx := pair(t, h, h.sendersOpts(procs)...)
	limit := h.sharedLimit()
	var peers []*peer
	for i := range procs {
		env := map[string]string{envID: itoa(i), envShared: "1", envLimit: itoa(min(limit, 8<<10)),
			envWorkers: itoa(stressGoroutines), envFor: d.String()}
		peers = append(peers, startPeer(t, h, "stress-send", env, true, map[string]Passable{"out": tx}))
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}

	ctx := testCtx(t)
	var mu sync.Mutex
	ordered := newTracker()
	seen := map[uint32]map[uint64]bool{}
	var firstErr error
	var wg sync.WaitGroup
	for range consumers {
		wg.Go(func() {
			var buf []byte
			for {
				err := rx.RecvInto(ctx, &buf)
				mu.Lock()
				switch {
				case err != nil:
				case consumers == 1:
					err = ordered.add(buf)
				default:
					var sender uint32
					var seq uint64
					if sender, seq, err = checkMsg(buf); err == nil {
						if seen[sender] == nil {
							seen[sender] = map[uint64]bool{}
						}
						if seen[sender][seq] {
							err = fmt.Errorf("sender %d: message %d twice", sender, seq)
						}
						seen[sender][seq] = true
					}
				}
				if err != nil && err != io.EOF && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	total := 0
	for _, p := range peers {
		if err := p.exit(); err != nil {
			t.Fatalf("producer: %v", err)
		}
		for _, line := range strings.Split(p.output(), "\n") {
			id, n, ok := strings.Cut(line, " ")
			sender, err1 := strconv.Atoi(id)
			count, err2 := strconv.Atoi(n)
			if !ok || err1 != nil || err2 != nil {
				t.Fatalf("producer reported %q", p.output())
			}
			got := int(ordered.next[uint32(sender)])
			if consumers > 1 {
				got = len(seen[uint32(sender)])
			}
			if got != count {
				t.Errorf("sender %d sent %d, %d arrived", sender, count, got)
			}
			total += count
		}
	}
	t.Logf("%d messages from %d senders in %v, %d consumer(s)", total, procs*stressGoroutines, d, consumers)
}
