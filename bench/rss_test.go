package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/go/endpoints"
)

// EnvRSS turns TestPeakRSS on and names the file its table goes to.
const EnvRSS = "BENCH_RSS_OUT"

const gib = 1 << 30

// TestPeakRSS moves 1 GiB over each endpoint between two fresh child
// processes and reports each one's peak resident set (VmHWM, which each
// child reads as it finishes: ru_maxrss would count the parent's memory at
// fork time), beside two children that do nothing but take their end.
// It runs only when BENCH_RSS_OUT names a file for the table (./run sets
// it): it takes a while.
func TestPeakRSS(t *testing.T) {
	out := os.Getenv(EnvRSS)
	if out == "" {
		t.Skip(EnvRSS + " is not set: the 1 GiB transfers run from ./run")
	}
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintln(f, "| endpoint | message | sender peak RSS | receiver peak RSS | same children idle (sender / receiver) |")
	fmt.Fprintln(f, "| --- | --- | --- | --- | --- |")
	for _, k := range kinds {
		size := 64 << 10
		if k.max > 0 {
			size = k.max
		}
		idleS, idleR := rssRun(t, k, "idle", size)
		sendRSS, recvRSS := rssRun(t, k, "gib", size)
		fmt.Fprintf(f, "| %s | %d KiB | %d KiB (%+d) | %d KiB (%+d) | %d / %d KiB |\n", k.name, size>>10,
			sendRSS, sendRSS-idleS, recvRSS, recvRSS-idleR, idleS, idleR)
	}
}

// rssRun runs a sender child and a receiver child over one channel of
// kind k and returns their peak RSS in KiB.
func rssRun(t *testing.T, k kind, what string, size int) (sender, receiver int64) {
	tx, rx, err := k.pair()
	if err != nil {
		t.Fatal(err)
	}
	s, r := k.child("rss-send", what, size), k.child("rss-recv", what, size)
	var sOut, rOut strings.Builder
	s.Stdout, r.Stdout = &sOut, &rOut
	if err := endpoints.Start(s, endpoints.Pass("out", tx)); err != nil {
		t.Fatal(err)
	}
	if err := endpoints.Start(r, endpoints.Pass("in", rx)); err != nil {
		t.Fatal(err)
	}
	errS, errR := s.Wait(), r.Wait()
	for _, f := range removeLater {
		f()
	}
	removeLater = nil
	if errS != nil || errR != nil {
		t.Fatalf("%s %s: sender %v, receiver %v", k.name, what, errS, errR)
	}
	sender, _ = strconv.ParseInt(strings.TrimSpace(sOut.String()), 10, 64)
	receiver, _ = strconv.ParseInt(strings.TrimSpace(rOut.String()), 10, 64)
	return sender, receiver
}

// printHWM prints this process's peak resident set in KiB.
func printHWM() {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fmt.Println(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
}

func init() {
	peers["rss-send"] = func(what string, size int) error {
		tx, err := endpoints.InheritSender[[]byte]("out", onlyWriter()...)
		if err != nil {
			return err
		}
		msg := make([]byte, size)
		for range gib / size {
			if what == "idle" {
				break
			}
			if err := tx.Send(context.Background(), msg); err != nil {
				return err
			}
		}
		err = tx.Close()
		printHWM()
		return err
	}
	peers["rss-recv"] = func(what string, size int) error {
		rx, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		defer printHWM()
		var buf []byte
		for n := 0; ; n++ {
			if err := rx.RecvInto(context.Background(), &buf); err != nil {
				if n != gib/size && what != "idle" {
					return fmt.Errorf("%d messages, then %w", n, err)
				}
				return ignoreEOF(err)
			}
		}
	}
}
