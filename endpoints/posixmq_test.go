package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

var posixMQHarness = &ipcchantest.Harness{
	Name:          "posixmq",
	CountsSenders: true,
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return endpoints.MQPair[[]byte](endpoints.MQAttr{MaxMsgs: 10, MsgSize: 8192}, opts...)
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   8192,
	MaxShared:    8192,
	WatchPeer:    true, // a queue has no kernel end of stream
	Lookalikes:   queueLookalikes,
}

// The queues' end-of-stream marker and the prefix whose values are sent
// escaped, as the README documents them.
const (
	queueMarker = "\x00IPCCHAN-EOS\x00\x00\x00\x01"
	queuePrefix = "\x00IPCCHAN-EOS\x00\x00\x00"
	queueEscape = queuePrefix + "\x02"
)

// queueLookalikes are values that look like the queues' end-of-stream
// marker, for the conformance rule that none of them ends the stream.
var queueLookalikes = [][]byte{
	[]byte(queueMarker),
	[]byte(queueMarker + queueMarker),
	[]byte(queueMarker + "and more"),
	[]byte(queuePrefix),
	[]byte(queuePrefix[:8]),
	[]byte(queueMarker[:15] + "\x00"),
	[]byte(queuePrefix + "\x03"),
	[]byte(queueEscape),
	[]byte(queueEscape + "x"),
	[]byte(queueEscape + queueMarker),
	[]byte(queueEscape + queueEscape + queueMarker),
}

func TestPosixMQConformance(t *testing.T) { ipcchantest.Run(t, posixMQHarness) }

// mqTestName returns a queue name unique to this test, unlinked at its end.
func mqTestName(t *testing.T) string {
	name := fmt.Sprintf("/ipcchan-test-%d-%s", os.Getpid(), sanitize(t.Name()))
	t.Cleanup(func() { endpoints.RemoveMQ(name) })
	return name
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '/' {
			b[i] = '_'
		}
	}
	return string(b)
}

// Highest priority first, FIFO within a priority; RecvTag reports it.
func TestPosixMQPriorities(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := mqTestName(t)
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	tx, err := endpoints.OpenMQSender[string](name)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := endpoints.OpenMQReceiver[string](name)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	sends := []struct {
		prio uint32
		v    string
	}{{1, "low-a"}, {9, "urgent-a"}, {5, "mid"}, {1, "low-b"}, {9, "urgent-b"}, {0, "lowest"}}
	for _, s := range sends {
		if err := tx.SendTag(ctx, s.prio, s.v); err != nil {
			t.Fatal(err)
		}
	}
	st, err := endpoints.StatMQ(name)
	if err != nil || st.Messages != len(sends) || st.MaxMsgs != 10 || st.MsgSize != 64 {
		t.Fatalf("StatMQ = %+v, %v", st, err)
	}
	if st2, err := endpoints.MQReceiverStats(rx); err != nil || st2 != st {
		t.Fatalf("MQReceiverStats = %+v, %v; StatMQ said %+v", st2, err, st)
	}
	tx.Close() // posts the end-of-stream marker, at priority 0, after "lowest"
	want := []string{"urgent-a", "urgent-b", "mid", "low-a", "low-b", "lowest"}
	wantPrio := []uint32{9, 9, 5, 1, 1, 0}
	for i, w := range want {
		v, prio, err := rx.RecvTag(ctx)
		if err != nil || v != w || prio != wantPrio[i] {
			t.Fatalf("message %d: %q prio %d, %v; want %q prio %d", i, v, prio, err, w, wantPrio[i])
		}
	}
	if _, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("after the marker: %v, want io.EOF", err)
	}
}

func TestPosixMQCreateAndRefusals(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, bad := range []string{"", "noslash", "/", "/a/b", "/..", "/" + string(make([]byte, 256))} {
		if err := endpoints.CreateMQ(bad, endpoints.MQAttr{}); !errors.Is(err, endpoints.ErrInvalidName) {
			t.Errorf("CreateMQ(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
	name := mqTestName(t)
	old := unix.Umask(0)
	defer unix.Umask(old)
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 2, MsgSize: 16}); err != nil {
		t.Fatal(err)
	}
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("creating it again: %v, want os.ErrExist", err)
	}
	if mode := mqMode(t, name); mode != 0o600 {
		t.Errorf("created with mode %#o, want 0600", mode)
	}
	tx, err := endpoints.OpenMQSender[[]byte](name, ipcchan.WithLinger(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close() // the queue is full: no room for the marker
	ctx := context.Background()
	if err := tx.Send(ctx, make([]byte, 17)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Errorf("17 bytes into a 16-byte queue: %v, want ErrMessageTooLarge", err)
	}
	if err := tx.SendTag(ctx, 32768, []byte("x")); !errors.Is(err, endpoints.ErrReservedTag) {
		t.Errorf("priority 32768: %v, want ErrReservedTag", err)
	}
	tx.Send(ctx, []byte("1"))
	tx.Send(ctx, []byte("2"))
	if err := tx.TrySend([]byte("3")); err != ipcchan.ErrWouldBlock {
		t.Errorf("TrySend on a full queue: %v, want ErrWouldBlock", err)
	}
	if st, _ := endpoints.StatMQ(name); st.Messages != 2 {
		t.Errorf("after refusals %d messages queued, want 2", st.Messages)
	}
	if _, err := endpoints.OpenMQReceiver[[]byte]("/ipcchan-test-missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("opening a missing queue: %v, want os.ErrNotExist", err)
	}
	if err := endpoints.RemoveMQ(name); err != nil {
		t.Fatal(err)
	}
	if err := endpoints.RemoveMQ(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("unlinking twice: %v", err)
	}
}

// mqMode reads a queue's permission bits from the mqueue file system,
// mounting it privately if it is not mounted.
func mqMode(t *testing.T, name string) os.FileMode {
	fi, err := os.Stat("/dev/mqueue" + name)
	if err != nil {
		dir := t.TempDir()
		if err := unix.Mount("mqueue", dir, "mqueue", 0, ""); err != nil {
			t.Skipf("cannot see queue modes: /dev/mqueue is not mounted and mounting failed: %v", err)
		}
		defer unix.Unmount(dir, unix.MNT_DETACH)
		if fi, err = os.Stat(dir + name); err != nil {
			t.Fatal(err)
		}
	}
	return fi.Mode().Perm()
}

// A receiver waiting for two senders ends after both markers.
func TestPosixMQEndOfStreamCountsSenders(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := mqTestName(t)
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 8, MsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	rx, err := endpoints.OpenMQReceiver[int](name, ipcchan.WithSenders(2))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	for i := range 2 {
		tx, err := endpoints.OpenMQSender[int](name)
		if err != nil {
			t.Fatal(err)
		}
		tx.Send(ctx, i)
		tx.Close()
	}
	var got []int
	for v, err := range rx.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if len(got) != 2 {
		t.Fatalf("got %v before the end, want two values", got)
	}
}

// Priority bands of one queue: each band takes only its priorities, in
// queue order, SelectFirst drains the urgent band first, and every band
// ends after the marker.
func TestPosixMQBands(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := mqTestName(t)
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	bands, err := endpoints.OpenMQBands[string](name, []uint32{16, 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bands {
		defer b.Close()
	}
	tx, err := endpoints.OpenMQSender[string](name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sends := []struct {
		prio uint32
		v    string
	}{{0, "bulk-1"}, {5, "normal-1"}, {20, "urgent-1"}, {5, "normal-2"}, {0, "bulk-2"}, {31, "urgent-2"}, {16, "urgent-3"}}
	for _, s := range sends {
		if err := tx.SendTag(ctx, s.prio, s.v); err != nil {
			t.Fatal(err)
		}
	}
	tx.Close()
	// The bulk band, read first, must move the others' messages aside.
	if v, p, err := bands[2].RecvTag(ctx); err != nil || v != "bulk-1" || p != 0 {
		t.Fatalf("bulk band: %q prio %d, %v", v, p, err)
	}
	var order []string
	live := []*ipcchan.Receiver[string]{bands[0], bands[1], bands[2]}
	for live[0] != nil || live[1] != nil || live[2] != nil {
		i, err := ipcchan.SelectFirst(ctx,
			ipcchan.OnRecv(live[0], func(v string) { order = append(order, v) }),
			ipcchan.OnRecv(live[1], func(v string) { order = append(order, v) }),
			ipcchan.OnRecv(live[2], func(v string) { order = append(order, v) }))
		if err == io.EOF {
			live[i] = nil
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"urgent-2", "urgent-1", "urgent-3", "normal-1", "normal-2", "bulk-2"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	if _, err := endpoints.OpenMQBands[string](name, []uint32{1, 16}); err == nil {
		t.Fatal("splits in the wrong order were accepted")
	}
}

// mq_notify without signals: a notification when a message arrives in the
// empty queue; one registered process at a time; a cancelled Wait
// withdraws its registration.
func TestPosixMQNotify(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := mqTestName(t)
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 4, MsgSize: 16}); err != nil {
		t.Fatal(err)
	}
	n, err := endpoints.NotifyMQ(name)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	tx, _ := endpoints.OpenMQSender[string](name, ipcchan.WithLinger(10*time.Millisecond))
	defer tx.Close()
	ctx := context.Background()
	for round := range 2 {
		done := make(chan error, 1)
		go func() { done <- n.Wait(ctx) }()
		select {
		case err := <-done:
			t.Fatalf("round %d: Wait returned %v before any message", round, err)
		case <-time.After(20 * time.Millisecond):
		}
		tx.Send(ctx, "work")
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no notification", round)
		}
		rx, _ := endpoints.OpenMQReceiver[string](name)
		rx.Recv(ctx) // empty the queue again
		rx.Close()
	}

	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := n.Wait(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with a deadline = %v", err)
	}
	// The cancelled Wait withdrew its registration: another may register.
	n2, err := endpoints.NotifyMQ(name)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	errc := make(chan error, 1)
	go func() { errc <- n2.Wait(ctx) }()
	time.Sleep(20 * time.Millisecond)
	if err := n.Wait(ctx); !errors.Is(err, endpoints.ErrNotifyBusy) {
		t.Fatalf("a second registration: %v, want ErrNotifyBusy", err)
	}
	n2.Close()
	if err := <-errc; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Wait after Close = %v, want os.ErrClosed", err)
	}
}

// Bytes the codec cannot decode are an error for that message only.
func TestPosixMQUndecodable(t *testing.T) {
	ipcchantest.CheckFDs(t)
	raw, rx0, err := endpoints.MQPair[[]byte](endpoints.MQAttr{MaxMsgs: 4, MsgSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	rx0.Close()
	defer raw.Close()
	ctx := context.Background()
	f, _ := raw.File()
	defer f.Close()
	rx, err := endpoints.FileReceiver[point](f)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	raw.Send(ctx, []byte{1, 2, 3}) // too short for a point
	raw.Send(ctx, []byte{1, 0, 0, 0, 2, 0, 0, 0})
	if _, err := rx.Recv(ctx); !errors.Is(err, ipcchan.ErrDecode) {
		t.Fatalf("undecodable message: %v, want ErrDecode", err)
	}
	if p, err := rx.Recv(ctx); err != nil || p != (point{1, 2}) {
		t.Fatalf("the next message: %+v, %v", p, err)
	}
}
