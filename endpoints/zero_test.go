package endpoints_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/zerotest"
)

// Every exported type of the package, declared rather than made, and as a
// nil pointer: no method panics or hangs, each returns an error or a
// harmless result.
func TestZeroValues(t *testing.T) {
	zerotest.Check(t,
		&endpoints.Conn[int, int]{}, (*endpoints.Conn[int, int])(nil),
		&endpoints.FileLock{}, (*endpoints.FileLock)(nil),
		&endpoints.Handed{}, (*endpoints.Handed)(nil),
		&endpoints.Leftover{}, (*endpoints.Leftover)(nil),
		&endpoints.Listener[int, int]{}, (*endpoints.Listener[int, int])(nil),
		&endpoints.MQNotifier{}, (*endpoints.MQNotifier)(nil),
		&endpoints.Mapping{}, (*endpoints.Mapping)(nil),
		&endpoints.Semaphore{}, (*endpoints.Semaphore)(nil),
		&endpoints.View[int64]{}, (*endpoints.View[int64])(nil),
		&endpoints.SemCounter{}, (*endpoints.SemCounter)(nil),
		&endpoints.SemSet{}, (*endpoints.SemSet)(nil),
		&endpoints.SysVQueue{}, (*endpoints.SysVQueue)(nil),
		endpoints.LockKind(0), endpoints.MQAttr{}, endpoints.MQStats{}, endpoints.MsgSelect{},
		endpoints.SemOp{}, endpoints.SemStats{}, endpoints.SysVStats{},
	)
}

// A nil context is an error naming what to pass, never a crash, on every
// endpoint call that takes one (the typed channels' own calls are checked
// in package ipcchan).
func TestNilContext(t *testing.T) {
	nilCtx := context.Context(nil)
	dir := t.TempDir()
	check := func(what string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), "context.Background()") {
			t.Errorf("%s with a nil context = %v, want an error saying what to pass", what, err)
		}
	}
	_, err := endpoints.Dial[int, int](nilCtx, "unix", dir+"/s")
	check("Dial", err)
	_, err = endpoints.Listen[int, int](nilCtx, "unix", dir+"/s")
	check("Listen", err)
	ln, err := endpoints.Listen[int, int](context.Background(), "unix", dir+"/s")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = ln.Accept(nilCtx)
	check("Accept", err)
	_, _, err = endpoints.ListenPacket[int](nilCtx, "unixgram", dir+"/g")
	check("ListenPacket", err)
	_, err = endpoints.DialPacket[int](nilCtx, "unixgram", dir+"/g")
	check("DialPacket", err)
	_, err = endpoints.OpenFIFOReceiver[int](nilCtx, dir+"/f")
	check("OpenFIFOReceiver", err)
	_, err = endpoints.OpenFIFOSender[int](nilCtx, dir+"/f")
	check("OpenFIFOSender", err)

	l, err := endpoints.OpenLock(dir+"/lock", endpoints.OFDLocks)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	check("FileLock.Lock", l.Lock(nilCtx))

	m, err := endpoints.NewMemfd("nilctx", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := endpoints.InitSemaphore(m, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	check("Semaphore.Acquire", s.Acquire(nilCtx, 1))
	if v := s.Value(); v != 1 {
		t.Errorf("a refused Acquire took a token: value %d", v)
	}
	s.Close()
	s.Release(1) // after Close: does nothing, never panics
	if err := s.Post(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Post after Close = %v, want os.ErrClosed", err)
	}

	set, err := endpoints.CreateSemSet(endpoints.IPCPrivate, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Remove()
	check("SemSet.Op", set.Op(nilCtx, endpoints.SemOp{Num: 0, Delta: 1}))
	q, err := endpoints.CreateSysVQueue(endpoints.IPCPrivate)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Remove()
	check("SysVQueue.Send", q.Send(nilCtx, 1, nil))
	_, _, err = q.Receive(nilCtx, endpoints.MsgSelect{}, nil)
	check("SysVQueue.Receive", err)

	tx, rx, err := endpoints.RingPair[[]byte](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	defer tx.Close()
	check("Sender.SendRaw", tx.SendRaw(nilCtx, 0, 8, func([]byte) (int, error) { return 0, nil }))
	check("Receiver.RecvRaw", rx.RecvRaw(nilCtx, func(uint32, []byte) error { return nil }))
}
