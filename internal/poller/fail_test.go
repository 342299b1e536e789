package poller

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
)

var errGone = errors.New("peer gone")

// Fail wakes a parked Read with its error, but data queued before it is
// still read first.
func TestFailWakesAfterQueuedData(t *testing.T) {
	r, w := pipe(t)
	buf := make([]byte, 8)
	var n int
	done := make(chan error, 1)
	go func() { done <- r.Read(context.Background(), readOp(buf, &n)) }()
	time.Sleep(20 * time.Millisecond)
	r.Fail(errGone)
	if err := <-done; err != errGone {
		t.Fatalf("parked Read = %v, want the Fail error", err)
	}
	unix.Write(pipeFD(t, w), []byte("x"))
	if err := r.Read(context.Background(), readOp(buf, &n)); err != nil || n != 1 {
		t.Fatalf("Read of queued data after Fail = %d, %v", n, err)
	}
	if err := r.Read(context.Background(), readOp(buf, &n)); err != errGone {
		t.Fatalf("Read of an empty pipe after Fail = %v", err)
	}
}

func pipeFD(t *testing.T, p *FD) int {
	var fd int
	p.Control(func(f int) { fd = f })
	return fd
}

func TestWatchPID(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	fired := make(chan struct{})
	stop, err := WatchPID(cmd.Process.Pid, func() { close(fired) })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	// A second watch, stopped before the exit, never fires.
	stop2, err := WatchPID(cmd.Process.Pid, func() { t.Error("a stopped watch fired") })
	if err != nil {
		t.Fatal(err)
	}
	stop2()
	select {
	case <-fired:
		t.Fatal("fired before the process exited")
	case <-time.After(20 * time.Millisecond):
	}
	cmd.Process.Kill()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("no call after the process was killed")
	}
	cmd.Wait()
	if _, err := WatchPID(cmd.Process.Pid, func() {}); err == nil {
		t.Error("watching a reaped process succeeded")
	}
}

// msgQueue returns a private SysV queue, removed at the end of the test,
// and functions that receive from it without and with waiting.
func msgQueue(t *testing.T) (id int, try, block func() error) {
	id, err := sys.Msgget(sys.IPCPrivate, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Skipf("no SysV message queues: %v", err)
	}
	t.Cleanup(func() { sys.MsgctlRmid(id) })
	buf := make([]byte, 64)
	try = func() error {
		_, err := sys.Msgrcv(id, buf, 0, unix.IPC_NOWAIT)
		if err == unix.ENOMSG {
			return unix.EAGAIN
		}
		return err
	}
	block = func() error {
		_, err := sys.Msgrcv(id, buf, 0, 0)
		return err
	}
	return id, try, block
}

func TestBlockingCancel(t *testing.T) {
	_, try, block := msgQueue(t)
	b := NewBlocking(0, nil)
	var worst time.Duration
	defer func() { t.Logf("slowest cancel observed after %v", worst) }()
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- do(ctx, b, try, block) }()
		time.Sleep(5 * time.Millisecond)
		start := time.Now()
		cancel()
		err := <-done
		took := time.Since(start)
		if err != context.Canceled {
			t.Fatalf("cancelled Do = %v after %v", err, took)
		}
		worst = max(worst, took)
	}
}

func TestBlockingDeliversAndCloses(t *testing.T) {
	id, try, block := msgQueue(t)
	b := NewBlocking(-1, nil)
	done := make(chan error, 1)
	go func() { done <- do(context.Background(), b, try, block) }()
	time.Sleep(10 * time.Millisecond)
	msg := append(sys.AppendMtype(nil, 1), 0)
	if err := sys.Msgsnd(id, msg, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Do with a message sent while blocked = %v", err)
	}
	go func() { done <- do(context.Background(), b, try, block) }()
	time.Sleep(10 * time.Millisecond)
	b.Fail(errGone)
	if err := <-done; err != errGone {
		t.Fatalf("after Fail: %v", err)
	}
	sys.Msgsnd(id, msg, 0)
	if err := do(context.Background(), b, try, block); err != nil {
		t.Fatalf("a queued message after Fail: %v", err)
	}
	b.Close()
	if err := do(context.Background(), b, try, block); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

// A removed queue ends a blocked call with EIDRM.
func TestBlockingRemovedQueue(t *testing.T) {
	id, try, block := msgQueue(t)
	b := NewBlocking(-1, nil)
	done := make(chan error, 1)
	go func() { done <- do(context.Background(), b, try, block) }()
	time.Sleep(10 * time.Millisecond)
	sys.MsgctlRmid(id)
	if err := <-done; err != unix.EIDRM {
		t.Fatalf("Do on a removed queue = %v, want EIDRM", err)
	}
}

// do is Do for calls that take no argument.
func do(ctx context.Context, b *Blocking, try, block func() error) error {
	return Do(ctx, b, func(f [2]func() error) error { return f[0]() }, func(f [2]func() error) error { return f[1]() }, [2]func() error{try, block})
}
