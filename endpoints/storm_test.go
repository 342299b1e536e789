package endpoints_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// The waits that are not channels — a POSIX semaphore's futex, a SysV
// semop, flock and OFD locks — under thousands of signals to every thread
// (ipcchantest.SignalStorm): none returns while what it waits for is
// held, and each gets it once it is released. The channels have the same
// rule in the conformance suite (EndIsReal/SignalStorm).
func TestWaitsSurviveSignalStorm(t *testing.T) {
	const rounds = 300
	// storm waits in a goroutine while signals fly, fails t if it returns
	// before release, then releases and wants it to succeed.
	storm := func(t *testing.T, wait func(context.Context) error, release func() error) {
		t.Helper()
		ctx := testCtx(t)
		done := make(chan error, 1)
		go func() { done <- wait(ctx) }()
		sent := ipcchantest.SignalStorm(rounds, nil)
		select {
		case err := <-done:
			t.Fatalf("the wait returned %v under %d signals with nothing released", err, sent)
		default:
		}
		if err := release(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("after the release the wait returned %v", err)
		}
	}
	t.Run("posix-sem", func(t *testing.T) {
		ipcchantest.CheckFDs(t)
		s, err := endpoints.CreateSemaphore(endpoints.ObjectName("storm"), 0)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		defer s.Remove()
		storm(t, func(ctx context.Context) error { return s.Acquire(ctx, 1) }, s.Post)
	})
	t.Run("sysv-sem", func(t *testing.T) {
		set, err := endpoints.CreateSemSet(endpoints.IPCPrivate, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer set.Remove()
		storm(t, func(ctx context.Context) error { return set.Op(ctx, endpoints.SemOp{Delta: -1}) },
			func() error { return set.Op(context.Background(), endpoints.SemOp{Delta: 1}) })
	})
	for name, kind := range map[string]endpoints.LockKind{"flock": endpoints.Flock, "ofd": endpoints.OFDLocks} {
		t.Run(name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			path := filepath.Join(t.TempDir(), "lock")
			holder, err := endpoints.OpenLock(path, kind)
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close()
			waiter, err := endpoints.OpenLock(path, kind)
			if err != nil {
				t.Fatal(err)
			}
			defer waiter.Close()
			if err := holder.Lock(context.Background()); err != nil {
				t.Fatal(err)
			}
			storm(t, waiter.Lock, holder.Unlock)
		})
	}
}
