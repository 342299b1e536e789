package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// Broadcast tests across processes: subscribers (and a publisher) are
// re-executed test binaries (child_test.go).

// bcastValue fills buf (16 bytes) with value i: its sequence number and a
// mix of it, which a subscriber checks.
func bcastValue(buf []byte, i uint64) {
	binary.LittleEndian.PutUint64(buf, i)
	binary.LittleEndian.PutUint64(buf[8:], bcastMix(i))
}

func bcastMix(i uint64) uint64 { return (i + 1) * 0x9E3779B97F4A7C15 }

// The environment of the bcast-sub role.
const (
	envBcastFirst  = "BCAST_FIRST"  // the sequence number its first value must have
	envBcastStall  = "BCAST_STALL"  // stop reading (for ever) after this many values
	envBcastName   = "BCAST_NAME"   // join by name (POSIX shm) rather than inherit "bcast"
	envBcastReplay = "BCAST_REPLAY" // join with WithReplay
	envBcastSlow   = "BCAST_SLOW"   // read slowly, after "go" arrives
)

func init() {
	// bcast-sub subscribes (inherited "bcast", or by name), says "ready"
	// on "report", receives until end of stream checking every value's
	// content and order (lost values, on a lossy broadcast, counted), and
	// reports "done first got missed sum".
	childRoles["bcast-sub"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		report, err := endpoints.InheritSender[string]("report")
		if err != nil {
			return err
		}
		defer report.Close()
		var opts []ipcchan.Option
		if os.Getenv(envBcastReplay) != "" {
			opts = append(opts, ipcchan.WithReplay())
		}
		var rx *ipcchan.Receiver[[]byte]
		if name := os.Getenv(envBcastName); name != "" {
			m, err := endpoints.OpenShm(name)
			if err != nil {
				return err
			}
			rx, err = endpoints.Subscribe[[]byte](m, opts...)
			m.Close()
			if err != nil {
				return err
			}
		} else if rx, err = endpoints.InheritReceiver[[]byte]("bcast", opts...); err != nil {
			return err
		}
		defer rx.Close()
		if err := report.Send(ctx, "ready"); err != nil {
			return err
		}
		slow := os.Getenv(envBcastSlow) != ""
		if slow {
			gorx, err := endpoints.InheritReceiver[string]("go")
			if err != nil {
				return err
			}
			if _, err := gorx.Recv(ctx); err != nil {
				return err
			}
			gorx.Close()
		}
		stall, _ := strconv.ParseUint(os.Getenv(envBcastStall), 10, 64)
		next, err := strconv.ParseInt(os.Getenv(envBcastFirst), 10, 64)
		if err != nil {
			next = -1 // unknown: the first value says
		}
		first := next
		var got, missed, sum uint64
		var buf []byte
		for {
			err := rx.RecvInto(ctx, &buf)
			if err == io.EOF {
				break
			}
			var lag *ipcchan.LaggedError
			if errors.As(err, &lag) {
				missed += lag.Missed
				if next >= 0 {
					next += int64(lag.Missed)
				}
				continue
			}
			if err != nil {
				return err
			}
			if len(buf) != 16 {
				return fmt.Errorf("a %d-byte value", len(buf))
			}
			v := binary.LittleEndian.Uint64(buf)
			if mix := binary.LittleEndian.Uint64(buf[8:]); mix != bcastMix(v) {
				return fmt.Errorf("value %d: content %#x, want %#x", v, mix, bcastMix(v))
			}
			if next >= 0 && v != uint64(next) {
				return fmt.Errorf("value %d where %d was next (after %d values, %d lost)", v, next, got, missed)
			}
			if first < 0 {
				first = int64(v)
			}
			next = int64(v) + 1
			got++
			sum += v
			if got == stall {
				report.Send(ctx, "stalled")
				select {} // killed by the test
			}
			if slow && got%64 == 0 {
				time.Sleep(time.Millisecond) // a slow consumer, by design
			}
		}
		return report.Send(ctx, fmt.Sprintf("done %d %d %d %d", first, got, missed, sum))
	}

	// bcast-pub publishes values 0, 1, ... on the inherited "bcast" for
	// ever (until killed).
	childRoles["bcast-pub"] = func() error {
		tx, err := endpoints.InheritSender[[]byte]("bcast")
		if err != nil {
			return err
		}
		buf := make([]byte, 16)
		for i := uint64(0); ; i++ {
			bcastValue(buf, i)
			if err := tx.Send(context.Background(), buf); err != nil {
				return err
			}
		}
	}
}

// bcastChild is a subscriber process and its report channel.
type bcastChild struct {
	proc   *helperProc
	report *ipcchan.Receiver[string]
	goTx   *ipcchan.Sender[string]
}

// bcastResult is what a bcast-sub child reports at the end.
type bcastResult struct{ first, got, missed, sum uint64 }

// startSubscriber starts a bcast-sub child handed sub (nil: it joins by
// name, as env says) and waits for it to have joined.
func startSubscriber(t *testing.T, ctx context.Context, sub *ipcchan.Receiver[[]byte], env ...string) *bcastChild {
	t.Helper()
	tx, rx, err := endpoints.PipePair[string]()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	ends := []endpoints.Handed{endpoints.Pass("report", tx)}
	if sub != nil {
		ends = append(ends, endpoints.Pass("bcast", sub))
	}
	c := &bcastChild{report: rx}
	for _, kv := range env {
		if strings.HasPrefix(kv, envBcastSlow+"=") {
			gtx, grx, err := endpoints.PipePair[string]()
			if err != nil {
				t.Fatal(err)
			}
			c.goTx = gtx
			t.Cleanup(func() { gtx.Close() })
			ends = append(ends, endpoints.Pass("go", grx))
		}
	}
	c.proc = startHelper(t, "bcast-sub", env, ends...)
	c.expect(t, ctx, "ready")
	return c
}

func (c *bcastChild) expect(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	if got, err := c.report.Recv(ctx); err != nil || got != want {
		t.Fatalf("subscriber process said %q, %v; want %q", got, err, want)
	}
}

// result waits for the child's report and its exit.
func (c *bcastChild) result(t *testing.T, ctx context.Context) bcastResult {
	t.Helper()
	line, err := c.report.Recv(ctx)
	if err != nil {
		t.Fatalf("subscriber process: %v (exit: %v)", err, c.proc.wait())
	}
	var r bcastResult
	if _, err := fmt.Sscanf(line, "done %d %d %d %d", &r.first, &r.got, &r.missed, &r.sum); err != nil {
		t.Fatalf("subscriber process said %q", line)
	}
	if err := c.proc.wait(); err != nil {
		t.Fatalf("subscriber process: %v", err)
	}
	return r
}

// publishRange publishes values from..to-1.
func publishRange(t *testing.T, ctx context.Context, pub *ipcchan.Sender[[]byte], from, to uint64) {
	t.Helper()
	buf := make([]byte, 16)
	for i := from; i < to; i++ {
		bcastValue(buf, i)
		if err := pub.Send(ctx, buf); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// bcastMillion is how many values the 8-process test publishes: a million,
// and a tenth of that under the race detector, which slows every access
// tenfold.
func bcastMillion() uint64 {
	if raceEnabled {
		return 100_000
	}
	return 1_000_000
}

// One publisher, 8 subscriber processes, a million values: every one
// gets every value, in order, whole (a sequence and a checksum), then the
// end of stream.
func TestBroadcastEightProcesses(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+1<<20)
	pub, err := endpoints.Broadcast[[]byte](m, ipcchan.WithSubscribers(8))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	children := make([]*bcastChild, 8)
	for i := range children {
		sub, err := endpoints.Subscribe[[]byte](m)
		if err != nil {
			t.Fatal(err)
		}
		children[i] = startSubscriber(t, ctx, sub, envBcastFirst+"=0")
	}
	n := bcastMillion()
	publishRange(t, ctx, pub, 0, n)
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range children {
		r := c.result(t, ctx)
		if r.first != 0 || r.got != n || r.missed != 0 || r.sum != n*(n-1)/2 {
			t.Errorf("subscriber %d: %+v, want %d values from 0 summing to %d", i, r, n, n*(n-1)/2)
		}
	}
}

// A lossless broadcast's subscriber process killed mid-stream (SIGKILL)
// stops holding the publisher back: its slot is freed while it is still a
// zombie (this test reaps it only at the end), and the others get
// everything.
func TestBroadcastSubscriberKilled(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+64<<10)
	pub, err := endpoints.Broadcast[[]byte](m, ipcchan.WithSubscribers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	var live []*bcastChild
	for range 2 {
		sub, err := endpoints.Subscribe[[]byte](m)
		if err != nil {
			t.Fatal(err)
		}
		live = append(live, startSubscriber(t, ctx, sub, envBcastFirst+"=0"))
	}
	// The one to kill, started without a reaper: it stays a zombie.
	cmd, rrx := startStallingSubscriber(t, ctx, m)
	const n = 100_000 // 50 times what the data area holds
	done := make(chan struct{})
	go func() {
		defer close(done)
		if s, err := rrx.Recv(ctx); err != nil || s != "stalled" {
			t.Errorf("stalling subscriber: %q, %v", s, err)
		}
		cmd.Process.Kill()
	}()
	publishRange(t, ctx, pub, 0, n)
	<-done
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range live {
		if r := c.result(t, ctx); r.got != n || r.sum != n*(n-1)/2 {
			t.Errorf("subscriber %d: %+v, want all %d values", i, r, n)
		}
	}
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the stalled subscriber exited with %v, want killed", err)
	}
}

// A subscriber process that joins by name mid-stream starts at the next
// value; with WithReplay, at the oldest value still held.
func TestBroadcastJoinByNameMidStream(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, replay := range []bool{false, true} {
		t.Run(fmt.Sprintf("replay=%v", replay), func(t *testing.T) {
			ctx := bcastCtx(t)
			name := endpoints.ObjectName("bcast-join")
			m, err := endpoints.CreateShm(name, 4096+16<<10)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			defer m.Remove()
			pub, err := endpoints.Broadcast[[]byte](m)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			const k, n = 5000, 20000
			publishRange(t, ctx, pub, 0, k) // nobody listens: nothing waits
			env := []string{envBcastName + "=" + name}
			if replay {
				env = append(env, envBcastReplay+"=1")
			} else {
				env = append(env, envBcastFirst+"="+strconv.Itoa(k))
			}
			c := startSubscriber(t, ctx, nil, env...)
			publishRange(t, ctx, pub, k, n)
			pub.Close()
			r := c.result(t, ctx)
			switch {
			case !replay && (r.first != k || r.got != n-k):
				t.Fatalf("%+v: want %d values from %d", r, n-k, k)
			case replay && (r.first == 0 || r.first >= k || r.got != n-r.first):
				t.Fatalf("%+v: want the values from one held before %d on", r, k)
			}
		})
	}
}

// A lossy broadcast's deliberately slow subscriber process is told
// exactly how many values it lost: what it got and what it lost add up to
// what was published, in order.
func TestBroadcastLossySlowProcess(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+16<<10)
	pub, err := endpoints.Broadcast[[]byte](m, ipcchan.WithLossy())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := endpoints.Subscribe[[]byte](m)
	if err != nil {
		t.Fatal(err)
	}
	c := startSubscriber(t, ctx, sub, envBcastFirst+"=0", envBcastSlow+"=1")
	const n = 50_000
	go func() {
		// The subscriber reads from the start while the publisher runs.
		c.goTx.Send(ctx, "go")
	}()
	publishRange(t, ctx, pub, 0, n)
	pub.Close()
	r := c.result(t, ctx)
	if r.got+r.missed != n || r.missed == 0 || r.got == 0 {
		t.Fatalf("%+v: want got + missed = %d, some of each", r, n)
	}
}

// A subscriber watching its publisher process sees it killed:
// ipcchan.ErrPeerGone, after the values it published.
func TestBroadcastPublisherKilled(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+16<<10)
	pub, err := endpoints.Broadcast[[]byte](m)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := endpoints.Subscribe[[]byte](m)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	p := startHelper(t, "bcast-pub", nil, endpoints.Pass("bcast", pub))
	if err := rx.WatchPeer(p.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for i := range uint64(1000) {
		if err := rx.RecvInto(ctx, &buf); err != nil {
			t.Fatal(err)
		}
		if v := binary.LittleEndian.Uint64(buf); v != i {
			t.Fatalf("value %d, want %d", v, i)
		}
	}
	p.cmd.Process.Kill()
	for {
		err := rx.RecvInto(ctx, &buf)
		if errors.Is(err, ipcchan.ErrPeerGone) {
			break
		}
		if err != nil {
			t.Fatalf("after the publisher was killed: %v, want ErrPeerGone", err)
		}
	}
	if err := p.wait(); err == nil {
		t.Fatal("the publisher exited by itself")
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// A publisher that died holding the write lock does not block the others
// (Send, TrySend), nor a subscriber joining.
func TestBroadcastLockHolderDied(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+16<<10)
	pub, err := endpoints.Broadcast[int](m)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	dead := uint32(deadPID(t))
	lock := m.Bytes()[36:40]
	binary.NativeEndian.PutUint32(lock, dead)
	rx, err := endpoints.Subscribe[int](m)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	binary.NativeEndian.PutUint32(lock, dead)
	if err := pub.TrySend(1); err != nil {
		t.Fatalf("TrySend: %v", err)
	}
	binary.NativeEndian.PutUint32(lock, dead)
	if err := pub.Send(ctx, 2); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for want := 1; want <= 2; want++ {
		if v, err := rx.Recv(ctx); err != nil || v != want {
			t.Fatalf("got %d, %v; want %d", v, err, want)
		}
	}
}

// The environment of the bcast-scribble role.
const envBcastScribble = "BCAST_SCRIBBLE" // what it writes over

func init() {
	// bcast-scribble is a hostile subscriber: it joins the broadcast
	// named BCAST_NAME, writes over what BCAST_SCRIBBLE says, says
	// "scribbled" and exits.
	childRoles["bcast-scribble"] = func() error {
		ctx := context.Background()
		report, err := endpoints.InheritSender[string]("report")
		if err != nil {
			return err
		}
		defer report.Close()
		m, err := endpoints.OpenShm(os.Getenv(envBcastName))
		if err != nil {
			return err
		}
		defer m.Close()
		rx, err := endpoints.Subscribe[[]byte](m)
		if err != nil {
			return err
		}
		defer rx.Close()
		mem := m.Bytes()
		slots := int(binary.NativeEndian.Uint32(mem[32:]))
		header := 256 + 64*slots
		switch os.Getenv(envBcastScribble) {
		case "slots": // every slot's tail and lost count
			for i := range slots {
				binary.NativeEndian.PutUint64(mem[256+64*i+8:], 0xDEADBEEF_FFFFFFF8)
				binary.NativeEndian.PutUint64(mem[256+64*i+16:], 0xDEADBEEF)
			}
		case "records": // the data area, over and over
			for round := range 200 {
				for i := header; i < len(mem); i++ {
					mem[i] = byte(i*7 + round)
				}
			}
		case "header": // the oldest position, the next sequence number, the generation counters
			for range 1000 {
				binary.NativeEndian.PutUint64(mem[128:], 0xFFFF_FFFF_FFFF_FFF0)
				binary.NativeEndian.PutUint64(mem[72:], 12345)
				binary.NativeEndian.PutUint32(mem[40:], 0xFFFFFFFF)
				binary.NativeEndian.PutUint32(mem[44:], 7)
				time.Sleep(100 * time.Microsecond)
			}
		case "wait": // the subscribers' futex word: their wake-ups lost
			for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline); {
				binary.NativeEndian.PutUint32(mem[192:], 0)
				binary.NativeEndian.PutUint32(mem[196:], 0)
			}
		default:
			return fmt.Errorf("%s=%q", envBcastScribble, os.Getenv(envBcastScribble))
		}
		return report.Send(ctx, "scribbled")
	}
}

// A subscriber process that writes over the slots, the records or the
// header harms nobody but itself: the publisher goes on, never crashing;
// the other subscribers get values, or errors wrapping ErrCorrupt (a slot
// freed, a record that does not hold together), never a read out of
// bounds or a hang, and reach the end of stream. Scribbled-over wake-ups
// only delay them (they look again every 50 ms): they still get every
// value, whole.
func TestBroadcastHostileSubscriber(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, what := range []string{"slots", "records", "header", "wait"} {
		t.Run(what, func(t *testing.T) {
			ctx := bcastCtx(t)
			name := endpoints.ObjectName("bcast-hostile")
			m, err := endpoints.CreateShm(name, 4096+16<<10)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			defer m.Remove()
			var opts []ipcchan.Option
			if what == "header" {
				opts = append(opts, ipcchan.WithLossy()) // the oldest position is what lossy subscribers trust
			}
			pub, err := endpoints.Broadcast[[]byte](m, append(opts, ipcchan.WithSubscribers(3))...)
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			type tally struct {
				got, corrupt, lost uint64
				err                error
			}
			results := make(chan tally, 2)
			for range 2 {
				rx, err := endpoints.Subscribe[[]byte](m)
				if err != nil {
					t.Fatal(err)
				}
				go func() {
					defer rx.Close()
					var r tally
					var buf []byte
					for {
						err := rx.RecvInto(ctx, &buf)
						var lag *ipcchan.LaggedError
						switch {
						case err == io.EOF:
							results <- r
							return
						case errors.As(err, &lag):
							r.lost += lag.Missed
						case errors.Is(err, endpoints.ErrCorrupt):
							r.corrupt++
							if strings.Contains(err.Error(), "slot was freed") {
								results <- r // it must subscribe again
								return
							}
						case err != nil:
							r.err = err
							results <- r
							return
						case what == "wait" && (len(buf) != 16 || binary.LittleEndian.Uint64(buf) != r.got || binary.LittleEndian.Uint64(buf[8:]) != bcastMix(r.got)):
							r.err = fmt.Errorf("value %d: %x", r.got, buf)
							results <- r
							return
						default:
							r.got++
						}
					}
				}()
			}
			rtx, rrx, err := endpoints.PipePair[string]()
			if err != nil {
				t.Fatal(err)
			}
			defer rrx.Close()
			p := startHelper(t, "bcast-scribble", []string{envBcastName + "=" + name, envBcastScribble + "=" + what}, endpoints.Pass("report", rtx))
			const n = 20000
			scribbled := false
			buf := make([]byte, 16)
			for i := uint64(0); i < n; i++ {
				if !scribbled && i == n/2 {
					// Half of the values go after the damage.
					if s, err := rrx.Recv(ctx); err != nil || s != "scribbled" {
						t.Fatalf("scribbler: %q, %v (exit %v)", s, err, p.wait())
					}
					scribbled = true
				}
				bcastValue(buf, i)
				if err := pub.Send(ctx, buf); err != nil && !errors.Is(err, endpoints.ErrCorrupt) {
					t.Fatalf("publish %d: %v", i, err)
				}
				if what == "wait" && i%64 == 0 {
					time.Sleep(100 * time.Microsecond) // let subscribers park
				}
			}
			if err := pub.Close(); err != nil {
				t.Fatalf("publisher's close: %v", err)
			}
			if err := p.wait(); err != nil {
				t.Fatalf("scribbler: %v", err)
			}
			for range 2 {
				r := <-results
				if r.err != nil {
					t.Fatalf("a subscriber: %v (%+v)", r.err, r)
				}
				if what == "wait" && (r.got != n || r.corrupt != 0) {
					t.Errorf("%+v: want all %d values", r, n)
				}
				t.Logf("%s: a subscriber got %d values, %d errors wrapping ErrCorrupt, lost %d", what, r.got, r.corrupt, r.lost)
			}
		})
	}
}

func init() {
	// bcast-pubn publishes BCAST_N values tagged with publisher id
	// BCAST_ID on the inherited "bcast", then closes (end of stream).
	childRoles["bcast-pubn"] = func() error {
		tx, err := endpoints.InheritSender[[]byte]("bcast")
		if err != nil {
			return err
		}
		id, _ := strconv.ParseUint(os.Getenv("BCAST_ID"), 10, 64)
		n, _ := strconv.ParseUint(os.Getenv("BCAST_N"), 10, 64)
		buf := make([]byte, 16)
		for i := range n {
			binary.LittleEndian.PutUint64(buf, id<<32|i)
			binary.LittleEndian.PutUint64(buf[8:], bcastMix(id<<32|i))
			if err := tx.Send(context.Background(), buf); err != nil {
				return err
			}
		}
		return tx.Close()
	}
}

// Three publishers, two of them other processes, share a broadcast: a
// subscriber (WithSenders(3)) gets every value of each, each publisher's
// in its order, then io.EOF once all three have closed; one joining after
// they all closed gets io.EOF at once.
func TestBroadcastSeveralPublishers(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+16<<10)
	pub, err := endpoints.Broadcast[[]byte](m)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rx, err := endpoints.Subscribe[[]byte](m, ipcchan.WithSenders(3))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	const n = 20000
	var procs []*helperProc
	for id := 1; id <= 2; id++ {
		tx, err := endpoints.BroadcastSender[[]byte](m)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, startHelper(t, "bcast-pubn", []string{"BCAST_ID=" + strconv.Itoa(id), "BCAST_N=" + strconv.Itoa(n)}, endpoints.Pass("bcast", tx)))
	}
	sent := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		for i := range uint64(n) {
			binary.LittleEndian.PutUint64(buf, i)
			binary.LittleEndian.PutUint64(buf[8:], bcastMix(i))
			if err := pub.Send(ctx, buf); err != nil {
				sent <- err
				return
			}
		}
		sent <- pub.Close()
	}()
	var next [3]uint64
	var buf []byte
	for {
		err := rx.RecvInto(ctx, &buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		v := binary.LittleEndian.Uint64(buf)
		id, i := v>>32, v&0xFFFFFFFF
		if id > 2 || i != next[id] || binary.LittleEndian.Uint64(buf[8:]) != bcastMix(v) {
			t.Fatalf("publisher %d's value %d, want %d (or damaged)", id, i, next[id%3])
		}
		next[id]++
	}
	if next != [3]uint64{n, n, n} {
		t.Fatalf("got %v values of each publisher, want %d", next, n)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if err := p.wait(); err != nil {
			t.Fatal(err)
		}
	}
	late, err := endpoints.Subscribe[[]byte](m, ipcchan.WithSenders(3))
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if err := late.RecvInto(ctx, &buf); err != io.EOF {
		t.Fatalf("a subscriber joining after every publisher closed: %v, want io.EOF", err)
	}
}

// A peer process that shrinks the memory under a broadcast on memory that
// cannot be sealed makes its ends return an error wrapping ErrCorrupt
// that says so — a subscriber's receive (parked or not), a publisher's
// send and close — instead of the fault killing the process.
func TestBroadcastSurvivesShrinkingPeer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := context.Background()
	for _, kind := range shrinkables {
		open := func(t *testing.T) (*ipcchan.Sender[string], *ipcchan.Receiver[string], *endpoints.Mapping, func()) {
			m, shrink := kind.make(t, 4096+4096)
			tx, err := endpoints.Broadcast[string](m)
			if err != nil {
				t.Fatal(err)
			}
			rx, err := endpoints.Subscribe[string](m)
			if err != nil {
				t.Fatal(err)
			}
			return tx, rx, m, func() {
				if got := shrink(); got != "ok" {
					t.Fatalf("the peer could not shrink the %s: %s", kind.name, got)
				}
			}
		}
		t.Run(kind.name+"/subscriber", func(t *testing.T) {
			tx, rx, _, shrink := open(t)
			defer tx.Close()
			if err := tx.Send(ctx, "lost"); err != nil {
				t.Fatal(err)
			}
			shrink()
			_, err := rx.Recv(ctx)
			wantGone(t, "Recv", err)
			_, err = rx.TryRecv()
			wantGone(t, "TryRecv", err)
			if err := rx.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
		t.Run(kind.name+"/publisher", func(t *testing.T) {
			tx, rx, _, shrink := open(t)
			defer rx.Close()
			shrink()
			wantGone(t, "Send", tx.Send(ctx, "x"))
			wantGone(t, "TrySend", tx.TrySend("x"))
			if err := tx.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
		t.Run(kind.name+"/publisher-close", func(t *testing.T) {
			tx, rx, _, shrink := open(t)
			defer rx.Close()
			shrink()
			wantGone(t, "Close", tx.Close())
		})
		t.Run(kind.name+"/parked-subscriber", func(t *testing.T) {
			tx, rx, m, shrink := open(t)
			defer tx.Close()
			got := make(chan error, 1)
			go func() { _, err := rx.Recv(ctx); got <- err }()
			swait := word32(m, 192)
			waitFor(t, "the subscriber parks", func() bool { return atomic.LoadUint32(swait) == 1 })
			shrink()
			// Its next look, at most 50 ms on, touches memory that is gone.
			select {
			case err := <-got:
				wantGone(t, "a parked Recv", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the parked Recv did not return")
			}
			if err := rx.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// A lossy subscriber handed to a child right after it was told it lagged
// moves there with its position: the child's first value is the one after
// the values lost, and nothing is counted twice or taken for corruption.
func TestBroadcastHandOverAfterLag(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+4096)
	pub, err := endpoints.Broadcast[[]byte](m, ipcchan.WithLossy())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := endpoints.Subscribe[[]byte](m)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000 // 32 KiB of records in a 4 KiB data area
	publishRange(t, ctx, pub, 0, n)
	var buf []byte
	var lag *ipcchan.LaggedError
	if err := sub.RecvInto(ctx, &buf); !errors.As(err, &lag) || lag.Missed == 0 {
		t.Fatalf("%v, want a LaggedError", err)
	}
	c := startSubscriber(t, ctx, sub, envBcastFirst+"="+strconv.FormatUint(lag.Missed, 10))
	pub.Close()
	r := c.result(t, ctx)
	// The end-of-stream record, in a full data area, overwrites the
	// oldest value if the child has not read it yet: it may lose that one
	// too, and counts it.
	if r.got+r.missed != n-lag.Missed || r.missed > 1 || r.first != lag.Missed+r.missed && r.first != lag.Missed {
		t.Fatalf("%+v: want the %d values from %d, got or counted lost (at most one: the end of stream's room)", r, n-lag.Missed, lag.Missed)
	}
}

// A publisher killed between committing a value (head) and counting it
// (next) leaves the count one short; the publisher that takes its lock
// back counts again from the records, so that the values go on numbered
// without a gap or a repeat: subscribers get them all, no error.
func TestBroadcastLockHolderDiedMidPublish(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+4096)
	pub, err := endpoints.Broadcast[int](m)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rx, err := endpoints.Subscribe[int](m)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	for i := range 3 {
		if err := pub.Send(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	// As a publisher killed after its head store would leave it: value 2
	// committed, next still 2, the lock its (dead) pid's.
	mem := m.Bytes()
	binary.NativeEndian.PutUint64(mem[72:], 2)
	binary.NativeEndian.PutUint32(mem[36:], uint32(deadPID(t)))
	for i := 3; i < 6; i++ {
		if err := pub.Send(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for want := range 6 {
		if v, err := rx.Recv(ctx); err != nil || v != want {
			t.Fatalf("got %d, %v; want %d", v, err, want)
		}
	}
}

// A publisher killed between committing its end-of-stream record and
// counting it (closed) leaves the count short; once the lock is taken
// back, the count is redone, so that a subscriber joining afterwards
// still sees the end of the stream.
func TestBroadcastLockHolderDiedMidClose(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+4096)
	pub, err := endpoints.Broadcast[int](m)
	if err != nil {
		t.Fatal(err)
	}
	other, err := endpoints.BroadcastSender[int](m)
	if err != nil {
		t.Fatal(err)
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	mem := m.Bytes()
	binary.NativeEndian.PutUint32(mem[80:], 0) // closed, as if its store never happened
	binary.NativeEndian.PutUint32(mem[36:], uint32(deadPID(t)))
	if err := other.Send(ctx, 7); err != nil { // takes the lock back
		t.Fatal(err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	late, err := endpoints.Subscribe[int](m, ipcchan.WithSenders(2))
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	if _, err := late.Recv(ctx); err != io.EOF {
		t.Fatalf("a subscriber joining after both publishers closed: %v, want io.EOF", err)
	}
}

// A publisher watching its subscriber (WatchPeer, as the conformance
// suite's ReceiverKilled does) gets ErrPeerGone once that subscriber's
// process is gone, even when its slot was freed first: the publisher then
// never waits again, and its values would go to nobody for ever. The
// watch is set only after the dead slot was freed, which is the order a
// fast publisher can meet (CI's GOARCH=386 run did).
func TestBroadcastWatchedSubscriberReaped(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+64<<10)
	pub, err := endpoints.Broadcast[[]byte](m)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	cmd, rrx := startStallingSubscriber(t, ctx, m)
	publishRange(t, ctx, pub, 0, 100)
	if s, err := rrx.Recv(ctx); err != nil || s != "stalled" {
		t.Fatalf("subscriber: %q, %v", s, err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Kill() // not reaped: a zombie, whose pid can still be watched
	// 50 times what the data area holds: the publisher waits for the dead
	// subscriber, frees its slot, and goes on with nobody subscribed.
	publishRange(t, ctx, pub, 100, 100_000)
	if err := pub.WatchPeer(pid); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	for deadline := time.Now().Add(10 * time.Second); ; {
		err := pub.Send(ctx, buf)
		if errors.Is(err, ipcchan.ErrPeerGone) {
			return
		}
		if err != nil {
			t.Fatalf("Send after the watched subscriber died: %v, want ErrPeerGone", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("Send still succeeds 10 s after watching a dead subscriber whose slot was freed")
		}
	}
}

// startStallingSubscriber subscribes to the broadcast in m and hands the
// subscription to a child that reads 100 values and then stops reading,
// saying "stalled" on the report pipe it returns; it returns once the
// child is ready. The child is killed and reaped when t ends, unless the
// test reaps it first.
func startStallingSubscriber(t *testing.T, ctx context.Context, m *endpoints.Mapping) (*exec.Cmd, *ipcchan.Receiver[string]) {
	t.Helper()
	sub, err := endpoints.Subscribe[[]byte](m)
	if err != nil {
		t.Fatal(err)
	}
	rtx, rrx, err := endpoints.PipePair[string]()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rrx.Close() })
	cmd := helperCmd(t, "bcast-sub", envBcastFirst+"=0", envBcastStall+"=100")
	if err := endpoints.Start(cmd, endpoints.Pass("report", rtx), endpoints.Pass("bcast", sub)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if s, err := rrx.Recv(ctx); err != nil || s != "ready" {
		t.Fatalf("stalling subscriber: %q, %v", s, err)
	}
	return cmd, rrx
}
