package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

// broadcastHarness is a broadcast with one publisher and one subscriber,
// for the conformance suite: a subscription handed to a child moves there
// with its position.
var broadcastHarness = &ipcchantest.Harness{
	Name:          "broadcast",
	CountsSenders: true,
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		m, err := endpoints.NewMemfd("bcast-conformance", 4096+1<<20)
		if err != nil {
			return nil, nil, err
		}
		defer m.Close()
		// Each end takes what concerns it, as RingPair's ends do.
		var txOpts, rxOpts []ipcchan.Option
		for _, o := range opts {
			if o.Name() != transport.OptSenders {
				txOpts = append(txOpts, o)
			}
			if o.Name() != transport.OptLinger && o.Name() != transport.OptTag {
				rxOpts = append(rxOpts, o)
			}
		}
		tx, err := endpoints.Broadcast[[]byte](m, txOpts...)
		if err != nil {
			return nil, nil, err
		}
		rx, err := endpoints.Subscribe[[]byte](m, rxOpts...)
		if err != nil {
			tx.Close()
			return nil, nil, err
		}
		return tx, rx, nil
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   1<<19 - 16,
	MaxShared:    1<<19 - 16,
	WatchPeer:    true, // no kernel end of stream on shared memory
}

func TestBroadcastConformance(t *testing.T) { ipcchantest.Run(t, broadcastHarness) }

// newBroadcastMem returns a memfd of size bytes for a broadcast, closed
// at the end of the test.
func newBroadcastMem(t testing.TB, size int) *endpoints.Mapping {
	t.Helper()
	m, err := endpoints.NewMemfd("bcast-test", size)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func bcastCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Every subscriber gets every value, in order, wrapping around the data
// area many times with sizes that make pads, then io.EOF.
func TestBroadcastEverySubscriberGetsAll(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+1024)
	pub, err := endpoints.Broadcast[[]byte](m, ipcchan.WithSubscribers(4))
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	subs := make([]*ipcchan.Receiver[[]byte], 3)
	for i := range subs {
		if subs[i], err = endpoints.Subscribe[[]byte](m); err != nil {
			t.Fatal(err)
		}
	}
	errs := make(chan error, len(subs))
	for _, rx := range subs {
		go func() {
			defer rx.Close()
			var buf []byte
			for i := 0; ; i++ {
				err := rx.RecvInto(ctx, &buf)
				if err == io.EOF {
					if i != n {
						errs <- errors.New("early end of stream")
						return
					}
					errs <- nil
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if len(buf) != i%300 {
					errs <- errors.New("wrong length")
					return
				}
				for j, b := range buf {
					if b != byte(i+j) {
						errs <- errors.New("wrong byte")
						return
					}
				}
			}
		}()
	}
	msg := make([]byte, 0, 300)
	for i := range n {
		msg = msg[:i%300]
		for j := range msg {
			msg[j] = byte(i + j)
		}
		if err := pub.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	for range subs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// Joining past the bound is an error naming the option; a subscriber that
// leaves frees its slot.
func TestBroadcastSubscriberBound(t *testing.T) {
	ipcchantest.CheckFDs(t)
	m := newBroadcastMem(t, 1<<16)
	pub, err := endpoints.Broadcast[int](m, ipcchan.WithSubscribers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	a, err := endpoints.Subscribe[int](m)
	if err != nil {
		t.Fatal(err)
	}
	b, err := endpoints.Subscribe[int](m)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = endpoints.Subscribe[int](m)
	if !errors.Is(err, endpoints.ErrNoSlot) || !strings.Contains(err.Error(), "ipcchan.WithSubscribers") {
		t.Fatalf("third subscriber: %v, want ErrNoSlot naming ipcchan.WithSubscribers", err)
	}
	a.Close()
	c, err := endpoints.Subscribe[int](m)
	if err != nil {
		t.Fatalf("after a subscriber left: %v", err)
	}
	c.Close()
}

// A lossy subscriber that falls behind learns exactly how many values it
// lost, then goes on with the oldest held, in order.
func TestBroadcastLossyLagCount(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+1024)
	pub, err := endpoints.Broadcast[uint64](m, ipcchan.WithLossy())
	if err != nil {
		t.Fatal(err)
	}
	rx, err := endpoints.Subscribe[uint64](m)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	const n = 10000
	for i := range uint64(n) {
		if err := pub.Send(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	pub.Close()
	var got, missed uint64
	next := uint64(0)
	for {
		v, err := rx.Recv(ctx)
		if err == io.EOF {
			break
		}
		var lag *ipcchan.LaggedError
		if errors.As(err, &lag) {
			if !errors.Is(err, ipcchan.ErrLagged) {
				t.Fatalf("%v does not wrap ErrLagged", err)
			}
			missed += lag.Missed
			next += lag.Missed
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if v != next {
			t.Fatalf("value %d, want %d", v, next)
		}
		next++
		got++
	}
	if missed == 0 || got+missed != n {
		t.Fatalf("got %d, missed %d: want a sum of %d with some missed", got, missed, n)
	}
}

// A subscriber that joins mid-stream starts at the next value; with
// WithReplay, at the oldest still held.
func TestBroadcastJoinMidStream(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	for _, lossy := range []bool{false, true} {
		m := newBroadcastMem(t, 4096+1024)
		var opts []ipcchan.Option
		if lossy {
			opts = append(opts, ipcchan.WithLossy())
		}
		pub, err := endpoints.Broadcast[uint64](m, opts...)
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(1000) {
			if err := pub.Send(ctx, i); err != nil {
				t.Fatal(err)
			}
		}
		late, err := endpoints.Subscribe[uint64](m)
		if err != nil {
			t.Fatal(err)
		}
		replay, err := endpoints.Subscribe[uint64](m, ipcchan.WithReplay())
		if err != nil {
			t.Fatal(err)
		}
		// Lossless, the publisher waits for the replaying subscriber,
		// which starts a data area behind. Lossy, it does not: the
		// value overwrites the oldest, and the replaying subscriber is
		// told it lost it (them).
		sent := make(chan error, 1)
		go func() {
			err := pub.Send(ctx, 1000)
			pub.Close()
			sent <- err
		}()
		if lossy {
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
			sent <- nil
		}
		first, err := replay.Recv(ctx)
		var lag *ipcchan.LaggedError
		if lossy && errors.As(err, &lag) {
			// The oldest held when it joined, and maybe more, are gone:
			// it goes on right after them.
			first, err = replay.Recv(ctx)
		} else if lossy {
			t.Fatalf("lossy: replaying subscriber lapped before it read: %d, %v; want ErrLagged", first, err)
		}
		if err != nil || first == 0 || first >= 1000 {
			t.Fatalf("lossy %v: replaying subscriber's first value %d, %v; want one held before 1000", lossy, first, err)
		}
		for want := first + 1; want <= 1000; want++ {
			if v, err := replay.Recv(ctx); err != nil || v != want {
				t.Fatalf("lossy %v: replay got %d, %v; want %d", lossy, v, err, want)
			}
		}
		if _, err := replay.Recv(ctx); err != io.EOF {
			t.Fatalf("lossy %v: replaying subscriber after the last value: %v, want io.EOF", lossy, err)
		}
		if v, err := late.Recv(ctx); err != nil || v != 1000 {
			t.Fatalf("lossy %v: late subscriber's first value %d, %v; want 1000", lossy, v, err)
		}
		if _, err := late.Recv(ctx); err != io.EOF {
			t.Fatalf("lossy %v: late subscriber after the last value: %v, want io.EOF", lossy, err)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		late.Close()
		replay.Close()
	}
}

// checkRun receives k values from rx and checks that they are
// consecutive and whole (bcastValue), from whatever the first is.
func checkRun(ctx context.Context, rx *ipcchan.Receiver[[]byte], k int) error {
	var buf []byte
	next := int64(-1)
	for range k {
		err := rx.RecvInto(ctx, &buf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if len(buf) != 16 {
			return fmt.Errorf("a %d-byte value", len(buf))
		}
		v := binary.LittleEndian.Uint64(buf)
		if mix := binary.LittleEndian.Uint64(buf[8:]); mix != bcastMix(v) {
			return fmt.Errorf("value %d overwritten while read: %#x", v, mix)
		}
		if next >= 0 && v != uint64(next) {
			return fmt.Errorf("value %d where %d was next", v, next)
		}
		next = int64(v) + 1
	}
	return nil
}

// Subscribers joining and leaving all the time, from goroutines and from
// other processes, while a lossless publisher laps a small data area: no
// joiner is ever lapped before its tail is visible (every run it reads is
// consecutive and whole), and the publisher never waits for a slot that
// left.
func TestBroadcastConcurrentJoins(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	name := endpoints.ObjectName("bcast-churn")
	m, err := endpoints.CreateShm(name, 4096+2048)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer m.Remove()
	pub, err := endpoints.Broadcast[[]byte](m, ipcchan.WithSubscribers(8))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	stop := make(chan struct{})
	errs := make(chan error, 8)
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				var opts []ipcchan.Option
				if (g+i)%3 == 0 {
					opts = append(opts, ipcchan.WithReplay())
				}
				rx, err := endpoints.Subscribe[[]byte](m, opts...)
				if err != nil {
					errs <- err
					return
				}
				err = checkRun(ctx, rx, 1+(g*37+i*11)%200)
				rx.Close()
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var procs []*helperProc
	for range 2 {
		procs = append(procs, startHelper(t, "bcast-churn", []string{envBcastName + "=" + name}))
	}
	publishRange(t, ctx, pub, 0, 30_000)
	pub.Close()
	close(stop)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range procs {
		if err := p.wait(); err != nil {
			t.Fatalf("churning subscriber process: %v", err)
		}
	}
}

func init() {
	// bcast-churn subscribes to the broadcast named BCAST_NAME, reads a
	// run of values, leaves, and again, until the end of stream.
	childRoles["bcast-churn"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		m, err := endpoints.OpenShm(os.Getenv(envBcastName))
		if err != nil {
			return err
		}
		defer m.Close()
		for i := 0; ; i++ {
			var opts []ipcchan.Option
			if i%2 == 0 {
				opts = append(opts, ipcchan.WithReplay())
			}
			rx, err := endpoints.Subscribe[[]byte](m, opts...)
			if err != nil {
				return err
			}
			var buf []byte
			if err := rx.RecvInto(ctx, &buf); err == io.EOF {
				rx.Close()
				return nil
			}
			err = checkRun(ctx, rx, 1+i%150)
			rx.Close()
			if err != nil {
				return err
			}
		}
	}
}

// A subscriber is usable in ipcchan.Select (polled: it has no
// descriptor), beside a pipe, and a Recv waiting on it returns ctx.Err()
// promptly when ctx ends.
func TestBroadcastSelectAndCancel(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+4096)
	pub, err := endpoints.Broadcast[string](m)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	rx, err := endpoints.Subscribe[string](m)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ptx, prx, err := endpoints.PipePair[string]()
	if err != nil {
		t.Fatal(err)
	}
	defer ptx.Close()
	defer prx.Close()
	go func() {
		time.Sleep(10 * time.Millisecond) // the Select is waiting by then, most runs
		pub.Send(ctx, "news")
	}()
	var got string
	k, err := ipcchan.Select(ctx,
		ipcchan.OnRecv(prx, func(v string) { t.Errorf("pipe delivered %q", v) }),
		ipcchan.OnRecv(rx, func(v string) { got = v }))
	if err != nil || k != 1 || got != "news" {
		t.Fatalf("Select = %d, %v, %q; want 1, nil, news", k, err, got)
	}
	// A publisher in a Select's send case.
	k, err = ipcchan.Select(ctx, ipcchan.OnSend(pub, "more", nil))
	if err != nil || k != 0 {
		t.Fatalf("Select send = %d, %v", k, err)
	}
	if v, err := rx.Recv(ctx); err != nil || v != "more" {
		t.Fatalf("%q, %v; want more", v, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		time.Sleep(10 * time.Millisecond)
		cancel()
	}()
	if _, err := rx.Recv(cctx); err != context.Canceled {
		t.Fatalf("a cancelled Recv: %v, want context.Canceled", err)
	}
}

// A value published and received costs no allocation, lossless (decoded
// in place) and lossy (copied out first).
func TestBroadcastAllocs(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := bcastCtx(t)
	for _, lossy := range []bool{false, true} {
		m := newBroadcastMem(t, 4096+64<<10)
		var opts []ipcchan.Option
		if lossy {
			opts = append(opts, ipcchan.WithLossy())
		}
		pub, err := endpoints.Broadcast[[]byte](m, opts...)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := endpoints.Subscribe[[]byte](m)
		if err != nil {
			t.Fatal(err)
		}
		msg, buf := make([]byte, 64), make([]byte, 0, 64)
		allocs := testing.AllocsPerRun(1000, func() {
			if err := pub.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
			if err := rx.RecvInto(ctx, &buf); err != nil || len(buf) != 64 {
				t.Fatal(err)
			}
		})
		pub.Close()
		rx.Close()
		if allocs != 0 {
			t.Errorf("lossy %v: %v allocations per value, want 0", lossy, allocs)
		}
	}
}

// A slot handed to a child that never took it over is freed once it has
// waited moveWait; a subscriber that joins into it afterwards keeps it:
// the handover's mark does not stay behind to have it freed in turn.
func TestBroadcastStaleHandoverSlotReused(t *testing.T) {
	ipcchantest.CheckFDs(t)
	defer endpoints.SetMoveWait(time.Nanosecond)()
	ctx := bcastCtx(t)
	m := newBroadcastMem(t, 4096+4096)
	pub, err := endpoints.Broadcast[uint64](m, ipcchan.WithSubscribers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	sub, err := endpoints.Subscribe[uint64](m)
	if err != nil {
		t.Fatal(err)
	}
	// Handed to a child that is never started.
	release, err := endpoints.Attach(exec.Command(os.Args[0]), endpoints.Pass("bcast", sub))
	if err != nil {
		t.Fatal(err)
	}
	release()
	rx, err := endpoints.Subscribe[uint64](m) // frees the stale slot and takes it
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	sent := 0
	for ; sent < 1000; sent++ {
		if err := pub.TrySend(uint64(sent)); errors.Is(err, ipcchan.ErrWouldBlock) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if sent == 1000 {
		t.Fatal("the publisher never waited for the subscriber: its slot was freed")
	}
	for want := range uint64(sent) {
		if v, err := rx.Recv(ctx); err != nil || v != want {
			t.Fatalf("got %d, %v; want %d", v, err, want)
		}
	}
}
