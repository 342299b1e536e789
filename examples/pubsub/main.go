// Command pubsub publishes a stream of typed quotes to three subscriber
// processes that join at different times, through a broadcast in POSIX
// shared memory, and has each print what it saw.
//
//	go run ./examples/pubsub                          # 3000 quotes, one every 500µs
//	go run ./examples/pubsub -quotes 10000 -every 100us
//	go run ./examples/pubsub -lossy -slow 2ms         # the late subscriber falls behind and is told how far
//
// The parent is the publisher. It makes the broadcast in a POSIX shared
// memory object (removed at the end) and starts three subscribers, each
// this program re-executed:
//
//   - "early" joins before the first quote: the parent subscribes and
//     hands the subscription to the child (endpoints.Pass), which goes on
//     from where it was: it sees every quote;
//   - "byname" is started a third of the way through, opens the object by
//     its name and subscribes there: it sees the quotes from the one after
//     it joined (the parent goes on publishing meanwhile, and waits for it
//     to have joined before two thirds);
//   - "late" is handed a subscription made two thirds of the way through,
//     with the descriptor of the memory (endpoints.Pass): it sees the
//     quotes from there on. With -slow it takes that long over each quote.
//
// The broadcast is lossless unless -lossy: a subscriber that falls behind
// holds the publisher back. With -lossy the publisher never waits, and a
// subscriber that fell behind is told how many quotes it lost
// (ipcchan.LaggedError). Each subscriber checks that the sequence numbers
// it saw follow each other, save the lost ones it was told of, and the
// parent checks where each started and ended: the program exits non-zero
// if anything is amiss. Ctrl-C ends the stream early: the publisher closes
// it, each subscriber prints what it saw so far, and the object is removed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// A Quote is a fixed-size value: the default codec writes it as 24 bytes
// (encoding/binary's layout), straight into the shared memory.
type Quote struct {
	Symbol [8]byte
	Price  float64
	Seq    uint64
}

func (q Quote) String() string {
	return fmt.Sprintf("#%d %s %.2f", q.Seq, strings.TrimRight(string(q.Symbol[:]), "\x00"), q.Price)
}

// A report is what a subscriber saw, sent back to the parent.
type report struct {
	First, Last, Count, Lost uint64
	Interrupted              bool
}

func main() {
	quotes := flag.Int("quotes", 3000, "quotes to publish")
	every := flag.Duration("every", 500*time.Microsecond, "time between quotes")
	lossy := flag.Bool("lossy", false, "a subscriber that falls behind loses the oldest quotes (and is told) instead of holding the publisher back")
	slow := flag.Duration("slow", 0, "time the late subscriber takes over each quote")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	if who := os.Getenv("PUBSUB_SUBSCRIBER"); who != "" {
		err = subscribe(ctx, who)
	} else if *quotes <= 0 {
		err = fmt.Errorf("-quotes must be positive")
	} else {
		err = publish(ctx, uint64(*quotes), *every, *lossy, *slow)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pubsub:", err)
		os.Exit(1)
	}
}

var symbols = [...]string{"ACME", "INIT", "GLOBX", "UMBR"}

// A sub is a started subscriber process and the channel it reports on.
type sub struct {
	who     string
	cmd     *exec.Cmd
	reports *ipcchan.Receiver[report]
	joined  chan error // its first report: it has joined
	joinErr error
	waited  bool
}

// waitJoined waits for the subscriber's first report, once.
func (s *sub) waitJoined() error {
	if !s.waited {
		s.joinErr, s.waited = <-s.joined, true
	}
	return s.joinErr
}

func publish(ctx context.Context, n uint64, every time.Duration, lossy bool, slow time.Duration) error {
	name := endpoints.ObjectName("pubsub-quotes")
	m, err := endpoints.CreateShm(name, 4096+64<<10) // a 64 KiB data area
	if err != nil {
		return err
	}
	defer m.Remove()
	defer m.Close()
	opts := []ipcchan.Option{ipcchan.WithSubscribers(4)}
	if lossy {
		opts = append(opts, ipcchan.WithLossy())
	}
	pub, err := endpoints.Broadcast[Quote](m, opts...)
	if err != nil {
		return err
	}
	defer pub.Close()

	var subs []*sub
	defer func() { // on an early return: end the stream, let the children go
		pub.Close()
		for _, s := range subs {
			s.cmd.Wait()
			s.reports.Close()
			s.waitJoined()
		}
	}()
	// start runs subscriber who, handed a subscription (nil: it joins by
	// name); its first report says it has joined.
	start := func(who string, rx *ipcchan.Receiver[Quote]) (*sub, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		tx, reports, err := endpoints.PipePair[report]()
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "PUBSUB_SUBSCRIBER="+who, "PUBSUB_SHM="+name, "PUBSUB_SLOW="+slow.String())
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		ends := []endpoints.Handed{endpoints.Pass("reports", tx)}
		if rx != nil {
			ends = append(ends, endpoints.Pass("quotes", rx))
		}
		if err := endpoints.Start(cmd, ends...); err != nil {
			reports.Close()
			return nil, err
		}
		reports.WatchPeer(cmd.Process.Pid) // a child that dies ends the waits
		s := &sub{who: who, cmd: cmd, reports: reports, joined: make(chan error, 1)}
		go func() { _, err := reports.Recv(context.Background()); s.joined <- err }()
		subs = append(subs, s)
		return s, nil
	}
	early, err := endpoints.Subscribe[Quote](m) // before the first quote
	if err != nil {
		return err
	}
	if _, err := start("early", early); err != nil {
		return err
	}
	var byName *sub
	tick := time.NewTicker(every)
	defer tick.Stop()
	var seq uint64
	interrupted := false
	for ; seq < n && !interrupted; seq++ {
		switch seq {
		case n / 3:
			if byName, err = start("byname", nil); err != nil {
				return err
			}
		case 2 * n / 3:
			if byName != nil { // it must have joined before the late one
				if err := byName.waitJoined(); err != nil {
					return fmt.Errorf("subscriber byname did not join: %w", err)
				}
			}
			late, err := endpoints.Subscribe[Quote](m) // from the next quote: 2n/3
			if err != nil {
				return err
			}
			if _, err := start("late", late); err != nil {
				return err
			}
		}
		q := Quote{Seq: seq, Price: 100 + float64(seq%997)/100}
		copy(q.Symbol[:], symbols[seq%uint64(len(symbols))])
		if err := pub.Send(ctx, q); err != nil {
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			interrupted = true
		}
	}
	if err := pub.Close(); err != nil { // end of stream for every subscriber
		return err
	}
	fmt.Printf("published %d quotes (%s)\n", seq, map[bool]string{false: "lossless", true: "lossy"}[lossy])

	// Each subscriber reports what it saw (after its "joined" report).
	var problems []string
	for _, s := range subs {
		if err := s.waitJoined(); err != nil {
			problems = append(problems, fmt.Sprintf("subscriber %s did not join: %v", s.who, err))
			continue
		}
		r, err := s.reports.Recv(context.Background())
		if err != nil {
			problems = append(problems, fmt.Sprintf("subscriber %s sent no report: %v", s.who, err))
			continue
		}
		if interrupted || r.Interrupted {
			continue
		}
		// Where each one must have started: early at the first quote,
		// byname after a third, late at two thirds; all end at the last.
		first, ok := r.First, true
		switch s.who {
		case "early":
			ok = first == 0
		case "byname":
			ok = first >= n/3 && first <= 2*n/3
		case "late":
			ok = first == 2*n/3
		}
		if !ok || r.Count == 0 || r.Last != n-1 || r.Count+r.Lost != r.Last-r.First+1 || !lossy && r.Lost != 0 {
			problems = append(problems, fmt.Sprintf("subscriber %s saw quotes %d to %d (%d of them, %d lost) of %d", s.who, r.First, r.Last, r.Count, r.Lost, n))
		}
	}
	for _, s := range subs {
		if err := s.cmd.Wait(); err != nil {
			problems = append(problems, fmt.Sprintf("subscriber %s: %v", s.who, err))
		}
		s.reports.Close()
	}
	subs = nil
	if interrupted {
		fmt.Println("interrupted: the stream ended early")
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// subscribe is a subscriber process: it joins (handed a subscription, or
// by name), says so, reads the quotes until the end of the stream, and
// prints and reports what it saw.
func subscribe(ctx context.Context, who string) error {
	reports, err := endpoints.InheritSender[report]("reports")
	if err != nil {
		return err
	}
	defer reports.Close()
	var rx *ipcchan.Receiver[Quote]
	if who == "byname" {
		m, err := endpoints.OpenShm(os.Getenv("PUBSUB_SHM"))
		if err != nil {
			return err
		}
		rx, err = endpoints.Subscribe[Quote](m) // from the next quote published
		m.Close()
		if err != nil {
			return err
		}
	} else if rx, err = endpoints.InheritReceiver[Quote]("quotes"); err != nil {
		return err
	}
	defer rx.Close()
	if err := rx.WatchPeer(os.Getppid()); err != nil { // a publisher that dies ends the wait
		return err
	}
	if err := reports.Send(ctx, report{}); err != nil { // joined
		return err
	}
	var slow time.Duration
	if who == "late" {
		slow, _ = time.ParseDuration(os.Getenv("PUBSUB_SLOW"))
	}
	var r report
	var last Quote
	next := uint64(0)
	for {
		q, err := rx.Recv(ctx)
		var lag *ipcchan.LaggedError
		switch {
		case errors.As(err, &lag): // lossy: lag.Missed quotes were lost; go on
			r.Lost += lag.Missed
			next += lag.Missed
			continue
		case errors.Is(err, io.EOF):
		case ctx.Err() != nil:
			r.Interrupted = true
		case err != nil:
			return err
		default:
			if r.Count == 0 { // those lost before it count from where this one joined
				r.First, next = q.Seq-r.Lost, q.Seq
			}
			if q.Seq != next {
				return fmt.Errorf("%s: quote %d arrived where %d was due", who, q.Seq, next)
			}
			r.Last, last = q.Seq, q
			r.Count++
			next++
			if slow > 0 {
				time.Sleep(slow) // a slow consumer's work
			}
			continue
		}
		break
	}
	switch {
	case r.Count == 0:
		fmt.Printf("subscriber %-6s saw no quote\n", who)
	default:
		fmt.Printf("subscriber %-6s saw %d quotes, #%d to #%d, lost %d; last: %v\n",
			who, r.Count, r.First, r.Last, r.Lost, last)
	}
	return reports.Send(context.Background(), r)
}
