package natsjs_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/natsjs"
)

// sendInts sends 0..n-1 on channel name (in this process, a goroutine)
// and closes the Sender; the returned channel gets its error.
func sendInts(t *testing.T, c *natsjs.Conn, name string, cfg natsjs.ChannelConfig, n int) <-chan error {
	t.Helper()
	ctx := testCtx(t)
	tx, err := natsjs.NewSender[int](ctx, c, name, cfg, ipcchan.WithCodec(codec.Codec[int](reportCodec{})))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := tx.Send(ctx, i); err != nil {
				tx.Close()
				errc <- err
				return
			}
		}
		errc <- tx.Close()
	}()
	return errc
}

func recvEnv(dir, channel, mode, consumer string) []string {
	return []string{envStore + "=" + dir, envChannel + "=" + channel, envMode + "=" + mode, envConsumer + "=" + consumer}
}

// killAndRestart runs receiver processes on one consumer of a channel fed
// n values by this process: each of the first kills processes is
// SIGKILLed after it reported every'th delivery, and the next started;
// the last runs to the end of the stream. Every value must be taken
// exactly once, in order (MaxPending 1).
func killAndRestart(t *testing.T, mode natsjs.Mode, consumer string, n, kills, every int) {
	dir := t.TempDir()
	c := connect(t, dir)
	cfg := natsjs.ChannelConfig{Mode: mode}
	name := "killed"
	var ds []Delivery
	var killed []string
	var errc <-chan error
	for i := 0; ; i++ {
		p := startChild(t, "r"+strconv.Itoa(i), "recv", recvEnv(dir, name, mode.String(), consumer)...)
		waitReady(t, p)
		if errc == nil {
			// After the first subscriber exists (a broadcast keeps
			// values for the subscribers it has).
			errc = sendInts(t, c, name, cfg, n)
		}
		if i < kills {
			ds, _ = readDeliveries(t, p, ds, every)
			p.kill()
			ds, _ = readDeliveries(t, p, ds, 0) // what it reported before it died
			killed = append(killed, p.name)
			continue
		}
		var ended bool
		ds, ended = readDeliveries(t, p, ds, 0)
		if !ended {
			t.Fatalf("%s ended without the end of stream", p.name)
		}
		p.wait(t)
		break
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := CheckExactlyOnce(ds, n, killed, true); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d deliveries of %d values, %d receivers killed", len(ds), n, len(killed))
}

// A receiver process SIGKILLed mid-stream, twice, and restarted (single
// node, MaxPending 1): every value is taken exactly once, in order. The
// value a killed receiver was inside Recv for comes again unless its
// acknowledgement was recorded before the kill — CheckExactlyOnce's rule.
func TestReceiverKilledExactlyOnce(t *testing.T) {
	killAndRestart(t, natsjs.WorkQueue, "", 300, 2, 100)
}

// A named broadcast subscriber killed and restarted resumes where it
// was: nothing missed, nothing taken twice, in order.
func TestBroadcastNamedSubscriberResumes(t *testing.T) {
	killAndRestart(t, natsjs.Broadcast, "resumer", 200, 1, 80)
}

// Four receiver processes on one work queue: every value taken exactly
// once overall.
func TestWorkQueueFourReceivers(t *testing.T) {
	const n = 400
	dir := t.TempDir()
	c := connect(t, dir)
	cfg := natsjs.ChannelConfig{Mode: natsjs.WorkQueue}
	var ps []*proc
	for i := range 4 {
		p := startChild(t, "w"+strconv.Itoa(i), "recv", recvEnv(dir, "jobs", "workqueue", "")...)
		waitReady(t, p)
		ps = append(ps, p)
	}
	errc := sendInts(t, c, "jobs", cfg, n)
	var ds []Delivery
	took := map[string]int{}
	for _, p := range ps {
		var ended bool
		before := len(ds)
		ds, ended = readDeliveries(t, p, ds, 0)
		if !ended {
			t.Fatalf("%s: no end of stream", p.name)
		}
		took[p.name] = len(ds) - before
		p.wait(t)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if err := CheckExactlyOnce(ds, n, nil, false); err != nil {
		t.Fatal(err)
	}
	t.Logf("values taken per receiver: %v", took)
}

// Three subscriber processes on a broadcast: each gets every value, in
// order, once.
func TestBroadcastThreeSubscribers(t *testing.T) {
	const n = 300
	dir := t.TempDir()
	c := connect(t, dir)
	cfg := natsjs.ChannelConfig{Mode: natsjs.Broadcast}
	var ps []*proc
	for i := range 3 {
		p := startChild(t, "s"+strconv.Itoa(i), "recv", recvEnv(dir, "news", "broadcast", "sub"+strconv.Itoa(i))...)
		waitReady(t, p)
		ps = append(ps, p)
	}
	errc := sendInts(t, c, "news", cfg, n)
	for _, p := range ps {
		ds, ended := readDeliveries(t, p, nil, 0)
		if !ended {
			t.Fatalf("%s: no end of stream", p.name)
		}
		p.wait(t)
		if err := CheckExactlyOnce(ds, n, nil, true); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	_ = context.Background
}
