package ipcchan_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/internal/zerotest"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSendRecvEndOfStream(t *testing.T) {
	tx, rx := memPair[string](4)
	defer rx.Close()
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c"} {
		if err := tx.Send(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	tx.Close()
	var got []string
	for v, err := range rx.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("got %q", got)
	}
	if _, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv after the end = %v, want io.EOF", err)
	}
}

func TestTryAndBackPressure(t *testing.T) {
	tx, rx := memPair[int64](1)
	defer tx.Close()
	defer rx.Close()
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("TryRecv empty = %v", err)
	}
	if err := tx.TrySend(1); err != nil {
		t.Fatal(err)
	}
	if err := tx.TrySend(2); err != ipcchan.ErrWouldBlock {
		t.Fatalf("TrySend full = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := tx.Send(ctx, 2); err != context.DeadlineExceeded {
		t.Fatalf("Send full = %v", err)
	}
	if v, err := rx.TryRecv(); err != nil || v != 1 {
		t.Fatalf("TryRecv = %v, %v", v, err)
	}
}

func TestCancelledContextTakesNothing(t *testing.T) {
	tx, rx := memPair[int64](4)
	defer tx.Close()
	defer rx.Close()
	tx.Send(context.Background(), 42)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rx.Recv(ctx); err != context.Canceled {
		t.Fatalf("Recv with a done context = %v", err)
	}
	if err := tx.Send(ctx, 1); err != context.Canceled {
		t.Fatalf("Send with a done context = %v", err)
	}
	if v, err := rx.Recv(context.Background()); err != nil || v != 42 {
		t.Fatalf("Recv = %v, %v; the cancelled calls took or added something", v, err)
	}
}

func TestCloseWakesBlockedCalls(t *testing.T) {
	tx, rx := memPair[int64](1)
	defer tx.Close()
	errc := make(chan error, 2)
	go func() {
		_, err := rx.Recv(context.Background())
		errc <- err
	}()
	// A second receiver waits for the receive lock.
	go func() {
		_, err := rx.Recv(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	rx.Close()
	for range 2 {
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("blocked Recv = %v, want os.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not wake a blocked Recv")
		}
	}
	if err := rx.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestChanHandsBackReadAhead(t *testing.T) {
	tx, rx := memPair[int64](8)
	defer rx.Close()
	ctx := context.Background()
	for i := range int64(3) {
		tx.Send(ctx, i)
	}
	tx.Close()
	cctx, cancel := context.WithCancel(ctx)
	ch := ipcchan.Chan(cctx, rx)
	if v := <-ch; v != 0 {
		t.Fatalf("first value %d", v)
	}
	time.Sleep(10 * time.Millisecond) // the pump holds value 1
	cancel()
	for v := range ch {
		t.Fatalf("value %d after cancel", v)
	}
	if err := rx.Err(); err != context.Canceled {
		t.Fatalf("Err = %v", err)
	}
	for want := int64(1); want <= 2; want++ {
		if v, err := rx.Recv(ctx); err != nil || v != want {
			t.Fatalf("Recv = %v, %v; want %d", v, err, want)
		}
	}
	// A Chan that runs to the end reports no error.
	ch = ipcchan.Chan(ctx, rx)
	for range ch {
	}
	if err := rx.Err(); err != nil {
		t.Fatalf("Err after end of stream = %v", err)
	}
}

func TestCodecOption(t *testing.T) {
	m := newMem(1)
	if _, err := ipcchan.NewSender[int64](m.sender(), ipcchan.WithCodec(codec.JSON[string]())); err == nil {
		t.Fatal("a string codec was accepted for int64")
	}
	tx, rx := memPair[map[string]int](2, ipcchan.WithCodec(codec.JSON[map[string]int]()))
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	tx.Send(ctx, map[string]int{"a": 1})
	if v, err := rx.Recv(ctx); err != nil || v["a"] != 1 {
		t.Fatalf("Recv = %v, %v", v, err)
	}
}

func TestWrapError(t *testing.T) {
	for _, bare := range []error{nil, io.EOF, ipcchan.ErrWouldBlock, context.Canceled, context.DeadlineExceeded} {
		if got := transport.WrapError("recv", "x", bare); got != bare {
			t.Errorf("WrapError(%v) = %v, want it bare", bare, got)
		}
	}
	err := transport.WrapError("send", "pipe:[1] write end", fmt.Errorf("%w: %w", ipcchan.ErrPeerGone, syscall.EPIPE))
	var oe *ipcchan.OpError
	if !errors.As(err, &oe) || oe.Op != "send" || !errors.Is(err, ipcchan.ErrPeerGone) || !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("WrapError lost something: %v", err)
	}
	if again := transport.WrapError("recv", "y", err); again != err {
		t.Fatalf("an *OpError was wrapped twice: %v", again)
	}
	if want := "ipcchan: send pipe:[1] write end: ipcchan: peer gone: broken pipe"; err.Error() != want {
		t.Fatalf("Error() = %q, want %q", err.Error(), want)
	}
}

type job struct{ ID int64 }
type cancelMsg struct{ Reason string }

func TestSelectOverDifferentTypes(t *testing.T) {
	jobsTx, jobs := memPair[job](4)
	cancelsTx, cancels := memPair[cancelMsg](4)
	defer jobs.Close()
	defer cancels.Close()
	ctx := context.Background()
	jobsTx.Send(ctx, job{1})
	jobsTx.Send(ctx, job{2})
	cancelsTx.Send(ctx, cancelMsg{"stop"})
	jobsTx.Close()
	cancelsTx.Close()

	var gotJobs []int64
	var gotCancel string
	cases := []ipcchan.Case{
		ipcchan.OnRecv(jobs, func(j job) { gotJobs = append(gotJobs, j.ID) }),
		ipcchan.OnRecv(cancels, func(c cancelMsg) { gotCancel = c.Reason }),
	}
	for live := 2; live > 0; {
		i, err := ipcchan.Select(ctx, cases...)
		if err == io.EOF {
			cases[i] = ipcchan.Case{}
			live--
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(gotJobs, []int64{1, 2}) || gotCancel != "stop" {
		t.Fatalf("jobs %v, cancel %q", gotJobs, gotCancel)
	}
}

func TestSelectHonoursContext(t *testing.T) {
	tx, rx := memPair[job](1)
	defer tx.Close()
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if i, err := ipcchan.Select(ctx, ipcchan.OnRecv(rx, func(job) {})); i != -1 || err != context.DeadlineExceeded {
		t.Fatalf("Select = %d, %v", i, err)
	}
	// Only nil cases: blocks until ctx ends, like select with nil channels.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if i, err := ipcchan.Select(ctx2, ipcchan.OnRecv[job](nil, nil)); i != -1 || err != context.DeadlineExceeded {
		t.Fatalf("Select with nil cases = %d, %v", i, err)
	}
}

// Frame is larger than a Go channel can carry (64 KiB).
type Frame struct {
	Seq     uint32
	Samples [20000]float32
}

// A Receiver of a type too large for a Go channel compiles and works with
// Recv, All and Select (only Chan, whose channel cannot hold it, is out of
// reach: it is a function, so nothing else depends on it).
func TestElementLargerThanAChannelCarries(t *testing.T) {
	tx, rx := memPair[Frame](4)
	defer rx.Close()
	ctx := context.Background()
	go func() {
		for i := range 3 {
			var f Frame
			f.Seq, f.Samples[19999] = uint32(i), float32(i)
			if err := tx.Send(ctx, f); err != nil {
				t.Error(err)
			}
		}
		tx.Close()
	}()
	f, err := rx.Recv(ctx)
	if err != nil || f.Seq != 0 {
		t.Fatalf("Recv = %d, %v", f.Seq, err)
	}
	if i, err := ipcchan.Select(ctx, ipcchan.OnRecv(rx, func(f Frame) {
		if f.Seq != 1 || f.Samples[19999] != 1 {
			t.Errorf("Select got frame %d", f.Seq)
		}
	})); i != 0 || err != nil {
		t.Fatalf("Select = %d, %v", i, err)
	}
	for f, err := range rx.All(ctx) {
		if err != nil || f.Seq != 2 || f.Samples[19999] != 2 {
			t.Fatalf("All = %d, %v", f.Seq, err)
		}
	}
}

// Values a user declares instead of making: every method of the zero and
// nil Sender and Receiver, and of the error types, returns an error or a
// harmless result; a nil context is an error, not a crash.
func TestZeroValuesAndNilContext(t *testing.T) {
	zerotest.Check(t,
		&ipcchan.Sender[int]{}, (*ipcchan.Sender[int])(nil),
		&ipcchan.Receiver[int]{}, (*ipcchan.Receiver[int])(nil),
		&ipcchan.OpError{}, (*ipcchan.OpError)(nil),
		&ipcchan.PeerExitError{}, (*ipcchan.PeerExitError)(nil),
		&transport.Config{}, ipcchan.Case{})

	var zs ipcchan.Sender[int]
	if err := zs.Send(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "NewSender") {
		t.Errorf("Send on a zero Sender = %v, want an error saying how to make one", err)
	}
	var zr ipcchan.Receiver[int]
	if _, err := zr.Recv(context.Background()); err == nil || !strings.Contains(err.Error(), "NewReceiver") {
		t.Errorf("Recv on a zero Receiver = %v, want an error saying how to make one", err)
	}
	if _, ok := <-ipcchan.Chan(context.Background(), &zr); ok {
		t.Error("Chan of a zero Receiver delivered a value")
	}
	if zr.Err() == nil {
		t.Error("Err after Chan of a zero Receiver = nil, want why")
	}
	if i, err := ipcchan.Select(context.Background(), ipcchan.OnRecv(&zr, func(int) {})); i != 0 || err == nil {
		t.Errorf("Select on a zero Receiver = %d, %v, want its index and an error", i, err)
	}

	tx, rx := memPair[int](4)
	defer rx.Close()
	defer tx.Close()
	nilCtx := context.Context(nil)
	checkNil := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "context.Background()") {
			t.Errorf("%s with a nil context = %v, want an error saying what to pass", what, err)
		}
	}
	checkNil("Send", tx.Send(nilCtx, 1))
	checkNil("Flush", tx.Flush(nilCtx))
	_, err := rx.Recv(nilCtx)
	checkNil("Recv", err)
	var v int
	checkNil("RecvInto", rx.RecvInto(nilCtx, &v))
	_, err = ipcchan.Select(nilCtx, ipcchan.OnRecv(rx, func(int) {}))
	checkNil("Select", err)
	for _, err := range rx.All(nilCtx) {
		checkNil("All", err)
	}
	if err := rx.RecvInto(context.Background(), nil); err == nil {
		t.Error("RecvInto(ctx, nil) = nil, want an error")
	}
	// Nothing was taken by the refused calls.
	if err := tx.Send(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	if got, err := rx.Recv(context.Background()); err != nil || got != 7 {
		t.Fatalf("Recv after the refused calls = %d, %v", got, err)
	}
}
