package endpoints_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

func init() {
	// drain-on-line takes the ring Receiver handed down as "in", waits for
	// a line on stdin, then receives until end of stream and prints each
	// value on a line of its own.
	childRoles["drain-on-line"] = func() error {
		rx, err := endpoints.InheritReceiver[string]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		// A test that fails leaves no child waiting for the end of stream.
		if err := rx.WatchPeer(os.Getppid()); err != nil {
			return err
		}
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return err
		}
		for v, err := range rx.All(context.Background()) {
			if err != nil {
				return err
			}
			fmt.Println(v)
		}
		return nil
	}

	// reserve-until-line takes the ring handed down as "out", reserves a
	// record (holding the write lock), says so, and publishes it ("held")
	// once a line arrives on stdin: a writer that holds the lock for a
	// while and then lets go.
	childRoles["reserve-until-line"] = func() error {
		tx, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			return err
		}
		defer tx.Close()
		return tx.SendRaw(context.Background(), 0, 4, func(room []byte) (int, error) {
			os.Stdout.WriteString("reserved\n")
			if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
				return 0, err
			}
			return copy(room, "held"), nil
		})
	}
}

// ringWord returns a function reporting whether the futex word at off
// (ringRWait, ringWWait) of the ring behind end is set — a side announced
// itself parked — read through a mapping of its own, and a function to
// release that mapping.
func ringWord(t *testing.T, end interface{ File() (*os.File, error) }, off int) (set func() bool, release func()) {
	t.Helper()
	f, err := end.File()
	if err != nil {
		t.Fatal(err)
	}
	m, err := endpoints.MappingFromFile(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	word := word32(m, off)
	return func() bool { return atomic.LoadUint32(word) != 0 }, func() { m.Close() }
}

// fillRing sends values "0", "1", ... with TrySend until the ring is full
// and returns how many went.
func fillRing(t *testing.T, tx *ipcchan.Sender[string]) int {
	t.Helper()
	for i := 0; ; i++ {
		switch err := tx.TrySend(strconv.Itoa(i)); {
		case err == ipcchan.ErrWouldBlock:
			if i == 0 {
				t.Fatal("the empty ring took nothing")
			}
			return i
		case err != nil:
			t.Fatal(err)
		}
	}
}

// A Send parked on a full ring that RingPair made holds no OS thread: 50
// of them add far fewer than 50 threads to the process; each wakes when
// its receiver makes room.
func TestRingParkedSenderHoldsNoThread(t *testing.T) {
	ipcchantest.CheckFDs(t)
	const n = 50
	var txs []*ipcchan.Sender[string]
	var rxs []*ipcchan.Receiver[string]
	var flags []func() bool
	var full []int
	for range n {
		// No linger: a failing test's Close of a full ring returns at once.
		tx, rx, err := endpoints.RingPair[string](256+4096, ipcchan.WithLinger(0))
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		defer rx.Close()
		parked, release := ringWord(t, tx, ringWWait)
		defer release()
		txs, rxs, flags = append(txs, tx), append(rxs, rx), append(flags, parked)
		full = append(full, fillRing(t, tx))
	}
	before := threads(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, tx := range txs {
		wg.Go(func() { errs <- tx.Send(ctx, "last") })
	}
	for i, parked := range flags {
		awaitCond(t, fmt.Sprintf("sender %d to park", i), parked)
	}
	during := threads(t)
	for i, rx := range rxs {
		for k := range full[i] + 1 {
			want := strconv.Itoa(k)
			if k == full[i] {
				want = "last"
			}
			if v, err := rx.Recv(ctx); err != nil || v != want {
				t.Fatalf("receiver %d: Recv = %q, %v; want %q", i, v, err, want)
			}
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
		t.Fatalf("%d parked senders took the process from %d to %d threads; want no thread per parked sender", n, before, during)
	}
}

// A Send parked on a full ring wakes when a child process, the ring's
// reader, drains it; everything sent arrives once, in order.
func TestRingParkedSendWakesOnChildDrain(t *testing.T) {
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[string](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	parked, release := ringWord(t, tx, ringWWait)
	defer release()
	cmd := helperCmd(t, "drain-on-line")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := endpoints.Start(cmd, endpoints.Pass("in", rx)); err != nil {
		t.Fatal(err)
	}
	defer func() { tx.Close(); cmd.Wait() }() // the child reads to the end of stream
	defer in.Close()
	n := fillRing(t, tx)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- tx.Send(ctx, "last") }()
	awaitCond(t, "the Send to park", parked)
	fmt.Fprintln(in, "go")
	if err := <-done; err != nil {
		t.Fatalf("parked Send: %v", err)
	}
	const more = 3 * 256 // several ring-fulls more
	for i := range more {
		if err := tx.Send(ctx, "more "+strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for i := range n + 1 + more {
		want := strconv.Itoa(i)
		switch {
		case i == n:
			want = "last"
		case i > n:
			want = "more " + strconv.Itoa(i-n-1)
		}
		if !sc.Scan() || sc.Text() != want {
			t.Fatalf("child's value %d: %q (%v); want %q", i, sc.Text(), sc.Err(), want)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// A parked Send ends, having written nothing, when its context ends, when
// its Sender is closed (whose end-of-stream record still follows once
// there is room) and when the transport fails (WatchPeer).
func TestRingParkedSendInterrupted(t *testing.T) {
	for _, how := range []string{"cancel", "close", "fail"} {
		t.Run(how, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			tx, rx, err := endpoints.RingPair[string](256+4096, ipcchan.WithLinger(20*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			defer rx.Close()
			parked, release := ringWord(t, tx, ringWWait)
			defer release()
			n := fillRing(t, tx)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			sctx, scancel := context.WithCancel(ctx)
			defer scancel()
			done := make(chan error, 1)
			go func() { done <- tx.Send(sctx, "never") }()
			awaitCond(t, "the Send to park", parked)
			failure := errors.New("the peer is gone")
			closed := make(chan error, 1)
			var want error
			switch how {
			case "cancel":
				scancel()
				want = context.Canceled
			case "close":
				// Close waits for room for its end-of-stream record: the
				// receiver below makes it.
				go func() { closed <- tx.Close() }()
				want = os.ErrClosed
			case "fail":
				tx.Transport().(transport.Failer).Fail(failure)
				want = failure
			}
			if err := <-done; !errors.Is(err, want) {
				t.Fatalf("parked Send = %v; want %v", err, want)
			}
			for i := range n {
				if v, err := rx.Recv(ctx); err != nil || v != strconv.Itoa(i) {
					t.Fatalf("Recv = %q, %v; want %q", v, err, strconv.Itoa(i))
				}
			}
			if how == "close" {
				if err := <-closed; err != nil {
					t.Fatalf("Close: %v", err)
				}
				if v, err := rx.Recv(ctx); err != io.EOF {
					t.Fatalf("Recv after Close = %q, %v; want io.EOF", v, err)
				}
				return
			}
			if v, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
				t.Fatalf("TryRecv = %q, %v: the interrupted Send wrote something", v, err)
			}
		})
	}
}

// A Send parked on the writers' bell while another process holds the
// write lock proceeds when that process lets go of it, and when it dies
// holding it (the survivor takes the lock back: its wait has a deadline).
func TestRingParkedSendLockHolder(t *testing.T) {
	for _, dies := range []bool{false, true} {
		t.Run(fmt.Sprintf("dies=%v", dies), func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			tx, rx, err := endpoints.RingPair[[]byte](256+4096, ipcchan.WithSenders(2))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			defer rx.Close()
			parked, release := ringWord(t, tx, ringWWait)
			defer release()
			f, err := tx.File()
			if err != nil {
				t.Fatal(err)
			}
			childTx, err := endpoints.FileSender[[]byte](f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			role := "reserve-until-line"
			if dies {
				role = "reserve-and-hang"
			}
			cmd := helperCmd(t, role)
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := endpoints.Start(cmd, endpoints.Pass("out", childTx)); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			defer in.Close()
			line := make([]byte, 9)
			if _, err := io.ReadFull(out, line); err != nil || string(line) != "reserved\n" {
				t.Fatalf("child: %q, %v", line, err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tx.Send(ctx, []byte("parent")) }()
			awaitCond(t, "the Send to park", parked)
			if dies {
				cmd.Process.Kill()
			} else {
				fmt.Fprintln(in, "go")
			}
			if err := <-done; err != nil {
				t.Fatalf("parked Send: %v", err)
			}
			var want []string
			if !dies {
				want = append(want, "held")
			}
			want = append(want, "parent")
			for _, w := range want {
				if v, err := rx.Recv(ctx); err != nil || string(v) != w {
					t.Fatalf("Recv = %q, %v; want %q", v, err, w)
				}
			}
			if err := cmd.Wait(); !dies && err != nil {
				t.Fatalf("child: %v", err)
			}
		})
	}
}

// A Select with a send case on a full ring that RingPair made — alone and
// beside a pipe — sleeps on the writers' doorbell: it wakes when a child
// process drains the ring, with no timed polling round and without going
// round in between (a doorbell watched for writing, an eventfd, is always
// ready). So does one waiting for the write lock another process holds,
// which rings the writers' bell when it lets go.
func TestRingSelectSendWaitsOnDoorbell(t *testing.T) {
	for _, withPipe := range []bool{false, true} {
		t.Run(fmt.Sprintf("full/withPipe=%v", withPipe), func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			tx, rx, err := endpoints.RingPair[string](256 + 4096)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if _, ok := tx.Transport().(transport.Doorbell); !ok {
				t.Fatalf("the Sender's transport %T has no doorbell: a Select would poll it", tx.Transport())
			}
			parked, release := ringWord(t, tx, ringWWait)
			defer release()
			ptx, prx, err := endpoints.PipePair[string]()
			if err != nil {
				t.Fatal(err)
			}
			defer ptx.Close()
			defer prx.Close()
			cmd := helperCmd(t, "drain-on-line")
			in, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := endpoints.Start(cmd, endpoints.Pass("in", rx)); err != nil {
				t.Fatal(err)
			}
			defer func() { tx.Close(); cmd.Wait() }() // the child reads to the end of stream
			defer in.Close()
			fillRing(t, tx)
			cases := []ipcchan.Case{ipcchan.OnSend(tx, "selected", nil)}
			if withPipe {
				cases = append(cases, ipcchan.OnRecv(prx, func(v string) { t.Errorf("pipe delivered %q", v) }))
			}
			selectParked(t, cases, parked, func() { fmt.Fprintln(in, "go") })
			if err := tx.Close(); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v", err)
			}
		})
	}
	t.Run("locked", func(t *testing.T) {
		ipcchantest.CheckFDs(t)
		tx, rx, err := endpoints.RingPair[[]byte](256+4096, ipcchan.WithSenders(2))
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		defer rx.Close()
		parked, release := ringWord(t, tx, ringWWait)
		defer release()
		f, err := tx.File()
		if err != nil {
			t.Fatal(err)
		}
		childTx, err := endpoints.FileSender[[]byte](f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		cmd := helperCmd(t, "reserve-until-line")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := endpoints.Start(cmd, endpoints.Pass("out", childTx)); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer in.Close()
		line := make([]byte, 9)
		if _, err := io.ReadFull(out, line); err != nil || string(line) != "reserved\n" {
			t.Fatalf("child: %q, %v", line, err)
		}
		selectParked(t, []ipcchan.Case{ipcchan.OnSend(tx, []byte("selected"), nil)}, parked, func() { fmt.Fprintln(in, "go") })
		ctx := testCtx(t)
		for _, want := range []string{"held", "selected"} {
			if v, err := rx.Recv(ctx); err != nil || string(v) != want {
				t.Fatalf("Recv = %q, %v; want %q", v, err, want)
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	})
}

// selectParked runs a Select on cases, waits until parked says it has
// announced itself on the ring, calls wake (which has another process make
// room), and checks that the Select chose case 0 after one wait (two at
// most: a stray ring), with no timed polling round.
func selectParked(t *testing.T, cases []ipcchan.Case, parked func() bool, wake func()) {
	t.Helper()
	type result struct {
		k   int
		err error
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	polls := poller.SelectPolls.Load()
	go func() {
		k, err := ipcchan.Select(ctx, cases...)
		done <- result{k, err}
	}()
	awaitCond(t, "the Select to park on the ring", parked)
	// The wake-up is a round trip with another process: a Select that
	// goes round meanwhile instead of sleeping waits many times.
	waits := poller.SelectWaits.Load()
	wake()
	res := <-done
	if res.err != nil || res.k != 0 {
		t.Fatalf("Select = %d, %v; want 0, nil", res.k, res.err)
	}
	if n := poller.SelectWaits.Load() - waits; n > 2 {
		t.Fatalf("the Select waited %d times after it parked; want one wait, woken by the doorbell", n)
	}
	if n := poller.SelectPolls.Load() - polls; n != 0 {
		t.Fatalf("the Select made %d timed polling rounds; want none (it waits on the doorbell)", n)
	}
}

// A Send parked on a full ring sleeps — on the doorbell of a ring that
// RingPair made, on the futex of one formatted in a memfd or in POSIX
// shared memory (which a peer can shrink: the wait looks every 50 ms) —
// instead of
// going round: its own try, finding no room, let go of the write lock
// ringing the writers, itself included. Nor do Selects parked to send on
// one ring wake each other when a TrySend finds it full. Over a window
// the parked writers make no more rounds than the futex wait's 10 ms
// recheck of the lock holder allows (plus two).
func TestRingParkedSendSleeps(t *testing.T) {
	for _, mode := range []string{"bells", "futex", "futex-shm", "selects"} {
		t.Run(mode, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			var tx *ipcchan.Sender[string]
			var rx *ipcchan.Receiver[string]
			var err error
			if mode == "futex" || mode == "futex-shm" {
				var m *endpoints.Mapping
				var merr error
				if mode == "futex" {
					m, merr = endpoints.NewMemfd("ipcchan-test-ring", 256+4096)
				} else if m, merr = endpoints.CreateShm(endpoints.ObjectName("parked-send"), 256+4096); merr == nil {
					defer m.Remove()
				}
				if merr != nil {
					t.Fatal(merr)
				}
				if err := endpoints.FormatRing(m); err != nil {
					t.Fatal(err)
				}
				tx, err = endpoints.RingSender[string](m, ipcchan.WithLinger(0))
				if err == nil {
					rx, err = endpoints.RingReceiver[string](m)
				}
				m.Close()
			} else {
				tx, rx, err = endpoints.RingPair[string](256+4096, ipcchan.WithLinger(0))
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			defer rx.Close()
			parked, release := ringWord(t, tx, ringWWait)
			defer release()
			n := fillRing(t, tx)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make(chan error, 2)
			var rounds func() uint64
			if mode == "selects" {
				// Two Selects on two Senders of the ring, and a third
				// Sender's TrySend.
				var others []*ipcchan.Sender[string]
				for range 3 {
					f, err := tx.File()
					if err != nil {
						t.Fatal(err)
					}
					o, err := endpoints.FileSender[string](f)
					f.Close()
					if err != nil {
						t.Fatal(err)
					}
					defer o.Close()
					others = append(others, o)
				}
				for _, o := range others[:2] {
					wg.Go(func() {
						_, err := ipcchan.Select(ctx, ipcchan.OnSend(o, "selected", nil))
						errs <- err
					})
				}
				awaitCond(t, "the Selects to park", parked)
				if err := others[2].TrySend("try"); err != ipcchan.ErrWouldBlock {
					t.Fatalf("TrySend on the full ring = %v; want ErrWouldBlock", err)
				}
				rounds = poller.SelectWaits.Load
			} else {
				wg.Go(func() { errs <- tx.Send(ctx, "last") })
				awaitCond(t, "the Send to park", parked)
				rounds = endpoints.WriterParks
			}
			// The observation window (not a synchronisation).
			start, before := time.Now(), rounds()
			time.Sleep(50 * time.Millisecond)
			made, window := rounds()-before, time.Since(start)
			for i := range n {
				if v, err := rx.Recv(ctx); err != nil || v != strconv.Itoa(i) {
					t.Fatalf("Recv = %q, %v; want %q", v, err, strconv.Itoa(i))
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if limit := 2 + uint64(window/(10*time.Millisecond)); made > limit {
				t.Fatalf("the parked writers made %d rounds in %v; want at most %d: they went round instead of sleeping", made, window, limit)
			}
		})
	}
}

// Several writers — goroutines with ends of their own and child processes
// — parked on one full ring share its writers' bell: when the reader frees
// room, every one of them sends.
func TestRingParkedSendersShareBell(t *testing.T) {
	ipcchantest.CheckFDs(t)
	const children, locals = 3, 2
	// tx's end of stream is dropped (no linger, a full ring): the others'
	// end the stream.
	tx, rx, err := endpoints.RingPair[string](256+4096, ipcchan.WithSenders(children+locals), ipcchan.WithLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	parked, release := ringWord(t, tx, ringWWait)
	defer release()
	var ends []*ipcchan.Sender[string]
	for range children + locals {
		f, err := tx.File()
		if err != nil {
			t.Fatal(err)
		}
		o, err := endpoints.FileSender[string](f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		ends = append(ends, o)
	}
	n := fillRing(t, tx)
	tx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, locals)
	for i, o := range ends[children:] {
		wg.Go(func() {
			err := o.Send(ctx, "local "+strconv.Itoa(i))
			errs <- errors.Join(err, o.Close())
		})
	}
	var procs []*helperProc
	for i, o := range ends[:children] {
		cmd := helperCmd(t, "send-lines")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := endpoints.Start(cmd, endpoints.Pass("out", o)); err != nil {
			t.Fatal(err)
		}
		p := &helperProc{cmd: cmd, done: make(chan struct{})}
		go func() { p.err = cmd.Wait(); close(p.done) }()
		defer func() { in.Close(); cmd.Process.Kill(); <-p.done }()
		fmt.Fprintln(in, "child "+strconv.Itoa(i))
		in.Close() // the child sends its line, then closes its end
		procs = append(procs, p)
	}
	awaitCond(t, "a writer to park", parked)
	got := map[string]bool{}
	for v, err := range rx.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got[v] = true
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, p := range procs {
		if err := p.wait(); err != nil {
			t.Fatalf("child %d: %v", i, err)
		}
	}
	for i := range n {
		if !got[strconv.Itoa(i)] {
			t.Fatalf("value %d of the full ring is missing", i)
		}
	}
	for i := range children {
		if !got["child "+strconv.Itoa(i)] {
			t.Fatalf("child %d's value is missing: got %v", i, got)
		}
	}
	for i := range locals {
		if !got["local "+strconv.Itoa(i)] {
			t.Fatalf("local sender %d's value is missing", i)
		}
	}
}

// A Select with a send case, or a TrySend, on a ring whose write lock a
// dead process holds takes the lock back, as a blocked Send does, instead
// of sleeping on a bell nobody will ring (Select) or failing with
// ErrWouldBlock for ever (TrySend).
func TestRingSendAfterLockHolderDied(t *testing.T) {
	sends := map[string]func(context.Context, *ipcchan.Sender[[]byte], []byte) error{
		"Select": func(ctx context.Context, tx *ipcchan.Sender[[]byte], v []byte) error {
			if k, err := ipcchan.Select(ctx, ipcchan.OnSend(tx, v, nil)); k != 0 || err != nil {
				return fmt.Errorf("Select = %d, %v; want 0, nil", k, err)
			}
			return nil
		},
		"TrySend": func(_ context.Context, tx *ipcchan.Sender[[]byte], v []byte) error {
			return tx.TrySend(v)
		},
	}
	for name, send := range sends {
		t.Run(name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			tx, rx, err := endpoints.RingPair[[]byte](256+4096, ipcchan.WithSenders(2))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			defer rx.Close()
			f, err := tx.File()
			if err != nil {
				t.Fatal(err)
			}
			childTx, err := endpoints.FileSender[[]byte](f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			cmd := helperCmd(t, "reserve-and-hang")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := endpoints.Start(cmd, endpoints.Pass("out", childTx)); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Kill(); cmd.Wait() }()
			line := make([]byte, 9)
			if _, err := io.ReadFull(out, line); err != nil || string(line) != "reserved\n" {
				t.Fatalf("child: %q, %v", line, err)
			}
			cmd.Process.Kill()
			cmd.Wait()
			ctx := testCtx(t)
			if err := send(ctx, tx, []byte("sent")); err != nil {
				t.Fatalf("%s after the lock holder died: %v", name, err)
			}
			if v, err := rx.Recv(ctx); err != nil || string(v) != "sent" {
				t.Fatalf("Recv = %q, %v; want %q", v, err, "sent")
			}
		})
	}
}
