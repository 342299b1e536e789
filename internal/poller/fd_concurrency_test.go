package poller

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Many goroutines read and write one FD at once, blocking and not, as
// concurrent Accepts and Sends on one descriptor do: the FD serializes
// them itself (the waiter's per-call state was once shared and crashed),
// and every 8-byte record written arrives exactly once.
func TestFDConcurrentReadsAndWrites(t *testing.T) {
	r, w := pipe(t)
	const goroutines, each = 8, 500
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var writers sync.WaitGroup
	for g := range goroutines {
		writers.Go(func() {
			for i := range each {
				var rec [8]byte
				binary.BigEndian.PutUint64(rec[:], uint64(g*each+i))
				write := func(fd int) error { _, err := unix.Write(fd, rec[:]); return err }
				var err error
				if i%2 == 0 {
					err = w.Write(ctx, write)
				} else {
					for err = w.TryWrite(write); err == unix.EAGAIN; err = w.TryWrite(write) {
						time.Sleep(10 * time.Microsecond)
					}
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}

	seen := make([]bool, goroutines*each)
	var mu sync.Mutex
	var readers sync.WaitGroup
	for g := range goroutines {
		readers.Go(func() {
			for i := 0; ; i++ {
				var rec [8]byte
				read := func(fd int) error {
					// Pipe writes of 8 bytes are atomic; so is a read of
					// 8 bytes of them.
					n, err := unix.Read(fd, rec[:])
					if err == nil && n != 8 {
						return errors.New("short read")
					}
					return err
				}
				var err error
				if (g+i)%2 == 0 {
					err = r.Read(ctx, read)
				} else if err = r.TryRead(read); err == unix.EAGAIN {
					continue
				}
				if errors.Is(err, os.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				k := binary.BigEndian.Uint64(rec[:])
				if k >= uint64(len(seen)) || seen[k] {
					t.Errorf("record %d read twice or out of range", k)
				} else {
					seen[k] = true
				}
				mu.Unlock()
			}
		})
	}
	writers.Wait()
	// Wait until every record is read, then close to end the readers.
	for deadline := time.Now().Add(time.Minute); ; {
		mu.Lock()
		all := true
		for _, s := range seen {
			all = all && s
		}
		mu.Unlock()
		if all {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("records never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	r.Close()
	readers.Wait()
}

// A Read waiting for another goroutine's Read gives up when its context
// ends, and when the FD is closed.
func TestFDWaitForTurnAbandoned(t *testing.T) {
	r, _ := pipe(t)
	first := make(chan error, 1)
	go func() {
		first <- r.Read(context.Background(), func(int) error { return unix.EAGAIN })
	}()
	// Wait until the first Read holds the read side.
	for r.rdLock.TryLock() {
		r.rdLock.Unlock()
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := r.Read(ctx, func(int) error { return nil }); err != context.DeadlineExceeded {
		t.Fatalf("second Read = %v, want context.DeadlineExceeded", err)
	}
	if err := r.TryRead(func(int) error { return nil }); err != unix.EAGAIN {
		t.Fatalf("TryRead while a Read is in progress = %v, want EAGAIN", err)
	}
	second := make(chan error, 1)
	go func() { second <- r.Read(context.Background(), func(int) error { return nil }) }()
	r.Close()
	for _, c := range []chan error{first, second} {
		select {
		case err := <-c:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("Read after Close = %v, want os.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not wake a Read")
		}
	}
}

// StopWrites wakes a Write parked on a full pipe with os.ErrClosed, refuses
// later writes, and leaves the descriptor usable through Control and for
// reading.
func TestFDStopWrites(t *testing.T) {
	r, w := pipe(t)
	var chunk [4096]byte
	fill := func(fd int) error { _, err := unix.Write(fd, chunk[:]); return err }
	for w.TryWrite(fill) == nil {
	}
	parked := make(chan error, 1)
	go func() { parked <- w.Write(context.Background(), fill) }()
	time.Sleep(10 * time.Millisecond) // let it park; it returns either way
	w.StopWrites()
	select {
	case err := <-parked:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("parked Write after StopWrites = %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("StopWrites did not wake a parked Write")
	}
	if err := w.Write(context.Background(), fill); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after StopWrites = %v", err)
	}
	if err := w.TryWrite(fill); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("TryWrite after StopWrites = %v", err)
	}
	var buf [8]byte
	var n int
	if err := r.Read(context.Background(), readOp(buf[:], &n)); err != nil || n == 0 {
		t.Fatalf("Read after the writer stopped = %d, %v", n, err)
	}
	called := false
	if err := w.Control(func(int) { called = true }); err != nil || !called {
		t.Fatalf("Control after StopWrites = %v (called %v)", err, called)
	}
}
