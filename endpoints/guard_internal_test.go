package endpoints

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Close's guarantee, under many goroutines: once wait returns, no call is
// in progress and none is let in; close reports true once.
func TestCallGuardCloseWaitsForCalls(t *testing.T) {
	for range 200 {
		var g callGuard
		var inside atomic.Int32
		var after atomic.Bool
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 100 {
					if !g.enter() {
						return
					}
					inside.Add(1)
					if after.Load() {
						t.Error("a call ran after wait returned")
					}
					inside.Add(-1)
					g.leave()
				}
			}()
		}
		closes := 0
		var cwg sync.WaitGroup
		var mu sync.Mutex
		for range 3 {
			cwg.Add(1)
			go func() {
				defer cwg.Done()
				if g.close() {
					mu.Lock()
					closes++
					mu.Unlock()
				}
				g.wait()
				if n := inside.Load(); n != 0 {
					t.Errorf("wait returned with %d calls in progress", n)
				}
				after.Store(true)
			}()
		}
		cwg.Wait()
		wg.Wait()
		if closes != 1 {
			t.Fatalf("close reported true %d times, want 1", closes)
		}
		if g.enter() {
			t.Fatal("enter after close let a call in")
		}
		if !g.closed() {
			t.Fatal("closed() = false after close")
		}
	}
}
