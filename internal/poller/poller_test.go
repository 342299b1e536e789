package poller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Getenv("POLLER_TEST_CHILD") == "watch-over-limit" {
		if err := watchOverLimit(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func pipe(t *testing.T) (r, w *FD) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r, err := Open(p[0], "r")
	if err != nil {
		t.Fatal(err)
	}
	w, err = Open(p[1], "w")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func readOp(buf []byte, n *int) func(int) error {
	return func(fd int) error {
		m, err := unix.Read(fd, buf)
		*n = m
		return err
	}
}

func TestReadWaitsForData(t *testing.T) {
	r, w := pipe(t)
	go func() {
		time.Sleep(5 * time.Millisecond)
		w.TryWrite(func(fd int) error { _, err := unix.Write(fd, []byte("hi")); return err })
	}()
	buf := make([]byte, 8)
	var n int
	if err := r.Read(context.Background(), readOp(buf, &n)); err != nil || string(buf[:n]) != "hi" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

func TestReadCancel(t *testing.T) {
	r, _ := pipe(t)
	var n int
	buf := make([]byte, 8)
	for _, spin := range []time.Duration{0, 50 * time.Microsecond} {
		r.SetReadSpin(spin)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		if err := r.Read(ctx, readOp(buf, &n)); err != context.Canceled {
			t.Fatalf("Read = %v, want context.Canceled", err)
		}
		// The deadline used to cancel is cleared: the next read waits again.
		ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
		err := r.Read(ctx2, readOp(buf, &n))
		cancel2()
		if err != context.DeadlineExceeded {
			t.Fatalf("Read after a cancel = %v", err)
		}
	}
}

func TestCloseWakesRead(t *testing.T) {
	r, _ := pipe(t)
	errc := make(chan error, 1)
	go func() {
		var n int
		errc <- r.Read(context.Background(), readOp(make([]byte, 8), &n))
	}()
	time.Sleep(10 * time.Millisecond)
	r.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read = %v, want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Read")
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if err := r.TryRead(func(int) error { return nil }); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("TryRead after Close = %v", err)
	}
}

func TestOpenRefusesRegularFiles(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(fd, "regular"); !errors.Is(err, ErrNotPollable) {
		t.Fatalf("Open(regular file) = %v, want ErrNotPollable", err)
	}
}

func TestSetWaitsForAny(t *testing.T) {
	r1, _ := pipe(t)
	r2, w2 := pipe(t)
	ev, err := NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	set, err := NewSet()
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	for _, p := range []*FD{r1, r2} {
		p.Control(func(fd int) { err = set.AddFD(fd) })
		if err != nil {
			t.Fatal(err)
		}
	}
	set.AddFD(ev.FD())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	if err := set.Wait(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Wait on nothing ready = %v", err)
	}
	cancel()
	w2.TryWrite(func(fd int) error { _, err := unix.Write(fd, []byte("x")); return err })
	if err := set.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Drain, then the event wakes it.
	var n int
	r2.TryRead(readOp(make([]byte, 8), &n))
	ev.Set()
	if err := set.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev.Clear()
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := set.Wait(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Wait after Clear = %v", err)
	}
}

func TestSpinnerAdapts(t *testing.T) {
	s := spinner{budget: initialSpin}
	for range 10 {
		s.miss()
	}
	if s.budget != minSpin {
		t.Fatalf("budget after misses = %v, want %v", s.budget, minSpin)
	}
	for range 10 {
		s.hit(time.Microsecond)
	}
	if s.budget != defaultMaxSpin {
		t.Fatalf("budget after hits = %v, want %v", s.budget, defaultMaxSpin)
	}
}
