package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// Every type documented as safe for concurrent use is used here the way a
// program with many goroutines uses it, under the race detector: every
// method at once, Close in the middle of it all. (Two goroutines in
// Listener.Accept once crashed the process.)

// concurrentHarnesses are the endpoints whose channel is exact (UDP drops
// by design and is only closed under load, below).
func concurrentHarnesses() []*ipcchantest.Harness {
	return []*ipcchantest.Harness{pipeHarness, fifoHarness, unixHarness, tcpHarness, unixgramHarness,
		unixpacketHarness, posixMQHarness, sysvMQHarness, ringHarness}
}

// cmsg is a test message: the sending goroutine and its sequence number.
func cmsg(g, seq int) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint32(nil, uint32(g)), uint64(seq))
}

// Eight goroutines send with Send and TrySend while eight receive with Recv,
// RecvInto, TryRecv, Select and Chan, and others call the remaining
// methods: every value arrives exactly once, each receiving goroutine sees
// each sender's values in order, and every receiver ends at end of stream.
func TestSenderReceiverConcurrentUse(t *testing.T) {
	for _, h := range concurrentHarnesses() {
		t.Run(h.Name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			tx, rx, err := h.Pair()
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			defer rx.Close()
			hammerPair(t, tx, rx)
		})
	}
}

func hammerPair(t *testing.T, tx *ipcchan.Sender[[]byte], rx *ipcchan.Receiver[[]byte]) {
	const senders, receivers, each = 8, 8, 300
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var sending sync.WaitGroup
	for g := range senders {
		sending.Go(func() {
			for seq := range each {
				msg := cmsg(g, seq)
				var err error
				if seq%3 == 0 {
					for err = tx.TrySend(msg); err == ipcchan.ErrWouldBlock; err = tx.TrySend(msg) {
						time.Sleep(50 * time.Microsecond)
					}
				} else {
					err = tx.Send(ctx, msg)
				}
				if err != nil {
					t.Errorf("sender %d, value %d: %v", g, seq, err)
					return
				}
			}
		})
	}

	var mu sync.Mutex
	seen := make(map[[12]byte]bool)
	var receiving sync.WaitGroup
	for g := range receivers {
		receiving.Go(func() {
			last := make([]int, senders)
			for i := range last {
				last[i] = -1
			}
			take := func(m []byte) bool {
				if len(m) != 12 {
					t.Errorf("receiver %d: a %d-byte value", g, len(m))
					return false
				}
				from, seq := int(binary.BigEndian.Uint32(m)), int(binary.BigEndian.Uint64(m[4:]))
				if from >= senders || seq <= last[from] {
					t.Errorf("receiver %d: value %d of sender %d after %d", g, seq, from, last[from])
					return false
				}
				last[from] = seq
				mu.Lock()
				defer mu.Unlock()
				if seen[[12]byte(m)] {
					t.Errorf("value %d of sender %d delivered twice", seq, from)
					return false
				}
				seen[[12]byte(m)] = true
				return true
			}
			var buf []byte
			for i := 0; ; i++ {
				var m []byte
				var err error
				switch (g + i) % 5 {
				case 0:
					m, err = rx.Recv(ctx)
				case 1:
					err = rx.RecvInto(ctx, &buf)
					m = buf
				case 2:
					if m, err = rx.TryRecv(); err == ipcchan.ErrWouldBlock {
						time.Sleep(50 * time.Microsecond)
						continue
					}
				case 3:
					_, err = ipcchan.Select(ctx, ipcchan.OnRecv(rx, func(v []byte) { m = v }))
				case 4:
					select {
					case v, ok := <-ipcchan.Chan(ctx, rx):
						if !ok {
							err = rx.Err()
							if err == nil {
								err = io.EOF
							}
						}
						m = v
					case <-ctx.Done():
						err = ctx.Err()
					}
				}
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Errorf("receiver %d: %v", g, err)
					return
				}
				if !take(m) {
					return
				}
			}
		})
	}

	// The rest of the methods, all the while.
	stop := make(chan struct{})
	var others sync.WaitGroup
	others.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = tx.String(), rx.String()
			_ = rx.Err()
			fctx, fcancel := context.WithTimeout(ctx, time.Millisecond)
			tx.Flush(fctx)
			fcancel()
			time.Sleep(100 * time.Microsecond)
		}
	})

	sending.Wait()
	if err := tx.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	receiving.Wait()
	close(stop)
	others.Wait()
	if len(seen) != senders*each && !t.Failed() {
		t.Errorf("%d values arrived, want %d", len(seen), senders*each)
	}
}

// Close of both ends while many goroutines send and receive: every call
// returns (an error wrapping os.ErrClosed, io.EOF, ErrPeerGone...), none
// panics or hangs.
func TestCloseUnderConcurrentUse(t *testing.T) {
	for _, h := range append(concurrentHarnesses(), udpHarness) {
		t.Run(h.Name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			tx, rx, err := h.Pair(ipcchan.WithLinger(50 * time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			var calls atomic.Int64
			for g := range 4 {
				wg.Go(func() {
					for i := 0; ; i++ {
						calls.Add(1)
						var err error
						if i%2 == 0 {
							err = tx.Send(ctx, cmsg(g, i))
						} else if err = tx.TrySend(cmsg(g, i)); err == ipcchan.ErrWouldBlock {
							err = nil
						}
						if err != nil {
							return
						}
					}
				})
				wg.Go(func() {
					for i := 0; ; i++ {
						calls.Add(1)
						var err error
						switch i % 3 {
						case 0:
							_, err = rx.Recv(ctx)
						case 1:
							if _, err = rx.TryRecv(); err == ipcchan.ErrWouldBlock {
								err = nil
							}
						case 2:
							select {
							case _, ok := <-ipcchan.Chan(ctx, rx):
								if !ok {
									err = errors.New("closed")
								}
							case <-ctx.Done():
								err = ctx.Err()
							}
						}
						if err != nil {
							return
						}
					}
				})
			}
			time.Sleep(20 * time.Millisecond)
			var closers sync.WaitGroup
			closers.Go(func() { rx.Close() })
			closers.Go(func() { tx.Close() })
			closers.Wait()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("calls still blocked 30 s after both ends closed")
			}
			if ctx.Err() != nil {
				t.Fatal("a call returned only because the test's context ended")
			}
			t.Logf("%d calls", calls.Load())
		})
	}
}

// Many goroutines accept on one Listener while clients dial from many
// more; every connection is accepted once and carries its value; Close
// ends every Accept with os.ErrClosed.
func TestListenerConcurrentAccept(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ network, address string }{
		{"unix", filepath.Join(dir, "s")},
		{"unixpacket", filepath.Join(dir, "p")},
		{"tcp", "127.0.0.1:0"},
	} {
		t.Run(c.network, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			const dials, dialers, acceptors = 600, 6, 4
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			l, err := endpoints.Listen[int, int](ctx, c.network, c.address)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()

			var mu sync.Mutex
			got := map[int]bool{}
			var accepting sync.WaitGroup
			for range acceptors {
				accepting.Go(func() {
					for {
						conn, err := l.Accept(ctx)
						if err != nil {
							if !errors.Is(err, os.ErrClosed) {
								t.Errorf("Accept: %v", err)
							}
							return
						}
						v, err := conn.Recv(ctx)
						conn.Close()
						if err != nil {
							t.Errorf("Recv from %v: %v", conn, err)
							return
						}
						mu.Lock()
						if got[v] {
							t.Errorf("connection %d accepted twice", v)
						}
						got[v] = true
						mu.Unlock()
						_, _ = l.Addr(), l.Refused()
					}
				})
			}
			var dialing sync.WaitGroup
			for d := range dialers {
				dialing.Go(func() {
					for i := d; i < dials; i += dialers {
						conn, err := endpoints.Dial[int, int](ctx, c.network, l.Addr())
						if err != nil {
							t.Errorf("Dial: %v", err)
							return
						}
						if err := conn.Send(ctx, i); err != nil {
							t.Errorf("Send: %v", err)
						}
						conn.Close()
					}
				})
			}
			dialing.Wait()
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
				mu.Lock()
				n := len(got)
				mu.Unlock()
				if n == dials || t.Failed() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d connections accepted", n, dials)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			accepting.Wait()
		})
	}
}

// A Conn's halves are used from many goroutines on both sides at once.
func TestConnConcurrentUse(t *testing.T) {
	ipcchantest.CheckFDs(t)
	a, b, err := endpoints.SocketPair[[]byte, []byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	// a → b and b → a at once, each direction hammered like a pair.
	var wg sync.WaitGroup
	wg.Go(func() { hammerPair(t, a.Sender(), b.Receiver()) })
	wg.Go(func() { hammerPair(t, b.Sender(), a.Receiver()) })
	wg.Go(func() {
		for range 100 {
			_, _ = a.PeerCred()
			_ = b.String()
		}
	})
	wg.Wait()
}

// A Mapping and a View: many goroutines update a shared counter through
// the view and call every other method while one goroutine closes the
// mapping; calls after Close report os.ErrClosed, none touches unmapped
// memory.
func TestMappingConcurrentUse(t *testing.T) {
	ipcchantest.CheckFDs(t)
	m, err := endpoints.NewMemfd("concurrent", 4096)
	if err != nil {
		t.Fatal(err)
	}
	v, err := endpoints.ViewOf[int64](m, 64)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var updates atomic.Int64
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				var err error
				switch (g + i) % 5 {
				case 0:
					err = v.Update(func(p *int64) { atomic.AddInt64(p, 1) })
					if err == nil {
						updates.Add(1)
					}
				case 1:
					_, err = v.Load()
				case 2:
					_ = m.Len()
					_ = m.Bytes()
					err = m.Sync()
				case 3:
					var f *os.File
					if f, err = m.File(); err == nil {
						f.Close()
					}
				case 4:
					_ = m.String()
					_ = m.ID()
				}
				if errors.Is(err, os.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("goroutine %d: %v", g, err)
					return
				}
				if i == 2000 && g == 0 {
					// An update is counted after it returns: besides the
					// counted ones, the counter may hold one in flight per
					// goroutine, no more.
					counted := updates.Load()
					got, _ := v.Load()
					if got < counted || got > updates.Load()+8 {
						t.Errorf("counter %d, %d updates counted", got, counted)
					}
					m.Close()
				}
			}
		})
	}
	wg.Wait()
}

// A Semaphore: goroutines acquire and release while others read its value;
// the count is exact; Close wakes the waiting Acquires with os.ErrClosed.
func TestSemaphoreConcurrentUse(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := "/" + endpoints.ObjectName("concurrent")[1:]
	s, err := endpoints.CreateSemaphore(name, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer endpoints.RemoveSemaphore(name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var inside atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 300 {
				if (g+i)%2 == 0 {
					if err := s.Acquire(ctx, 1); err != nil {
						t.Errorf("Acquire: %v", err)
						return
					}
				} else if !s.TryAcquire(1) {
					continue
				}
				if n := inside.Add(1); n > 2 {
					t.Errorf("%d holders of a semaphore of 2", n)
				}
				_ = s.Value()
				inside.Add(-1)
				s.Release(1)
			}
		})
	}
	wg.Wait()
	if v := s.Value(); v != 2 {
		t.Fatalf("value %d after balanced use, want 2", v)
	}
	// Waiters on an empty semaphore, then Close.
	if err := s.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- s.Acquire(ctx, 1) }()
	}
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := <-errs; !errors.Is(err, os.ErrClosed) {
			t.Errorf("Acquire waiting at Close = %v, want os.ErrClosed", err)
		}
	}
}

// A SemSet's counters from many goroutines: the count stays exact.
func TestSemSetConcurrentUse(t *testing.T) {
	set, err := endpoints.CreateSemSet(endpoints.IPCPrivate, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Remove()
	if err := set.SetValue(0, 3); err != nil {
		t.Fatal(err)
	}
	c := set.Counter(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var inside atomic.Int32
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if (g+i)%2 == 0 {
					if err := c.Acquire(ctx, 1); err != nil {
						t.Errorf("Acquire: %v", err)
						return
					}
				} else if !c.TryAcquire(1) {
					continue
				}
				if n := inside.Add(1); n > 3 {
					t.Errorf("%d holders of a counter of 3", n)
				}
				if _, err := set.Value(1); err != nil {
					t.Error(err)
				}
				if _, err := set.Stats(0); err != nil {
					t.Error(err)
				}
				inside.Add(-1)
				c.Release(1)
			}
		})
	}
	wg.Wait()
	if v, err := set.Value(0); err != nil || v != 3 {
		t.Fatalf("value %d, %v after balanced use, want 3", v, err)
	}
}

// One FileLock shared by goroutines excludes them from each other, as a
// sync.Mutex would.
func TestFileLockConcurrentUse(t *testing.T) {
	for _, kind := range []endpoints.LockKind{endpoints.OFDLocks, endpoints.Flock} {
		t.Run(fmt.Sprint(kind), func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			l, err := endpoints.OpenLock(filepath.Join(t.TempDir(), "lock"), kind)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var inside atomic.Int32
			var wg sync.WaitGroup
			for g := range 6 {
				wg.Go(func() {
					for i := range 100 {
						if (g+i)%3 == 0 {
							if !l.TryLock() {
								continue
							}
						} else if err := l.Lock(ctx); err != nil {
							t.Errorf("Lock: %v", err)
							return
						}
						if n := inside.Add(1); n != 1 {
							t.Errorf("%d goroutines hold the lock", n)
						}
						time.Sleep(20 * time.Microsecond) // hold it a moment, as real work would
						inside.Add(-1)
						if err := l.Unlock(); err != nil {
							t.Errorf("Unlock: %v", err)
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// A SysVQueue handle from many goroutines: Stats and Peek while values come
// and go.
func TestSysVQueueConcurrentUse(t *testing.T) {
	q, err := endpoints.CreateSysVQueue(endpoints.IPCPrivate)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Remove()
	tx, err := endpoints.SysVSender[[]byte](q)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			buf := make([]byte, 64)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := q.Stats(); err != nil {
					t.Error(err)
					return
				}
				q.Peek(0, buf) // ENOMSG or ENOSYS are fine: it must not race
			}
		})
	}
	hammerPair(t, tx, rx)
	close(stop)
	wg.Wait()
}
