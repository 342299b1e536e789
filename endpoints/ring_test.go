package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

var ringHarness = &ipcchantest.Harness{
	Name:          "ring",
	CountsSenders: true,
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return endpoints.RingPair[[]byte](256+1<<20, opts...)
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   1<<19 - 8,
	MaxShared:    1<<19 - 8,
	WatchPeer:    true, // no kernel end of stream on shared memory
}

func TestRingConformance(t *testing.T) { ipcchantest.Run(t, ringHarness) }

// Records wrap around the end of the data area many times, with sizes that
// make pads, and arrive whole and in order.
func TestRingWrapAround(t *testing.T) {
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[[]byte](256 + 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	go func() {
		msg := make([]byte, 0, 300)
		for i := range 5000 {
			msg = msg[:i%300]
			for j := range msg {
				msg[j] = byte(i + j)
			}
			if err := tx.Send(ctx, msg); err != nil {
				t.Error(err)
				return
			}
		}
		tx.Close()
	}()
	var buf []byte
	for i := 0; ; i++ {
		err := rx.RecvInto(ctx, &buf)
		if err == io.EOF {
			if i != 5000 {
				t.Fatalf("end of stream after %d records", i)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(buf) != i%300 {
			t.Fatalf("record %d: %d bytes, want %d", i, len(buf), i%300)
		}
		for j, b := range buf {
			if b != byte(i+j) {
				t.Fatalf("record %d byte %d: %d", i, j, b)
			}
		}
	}
}

// Zero-copy: SendRaw writes the record in the ring, RecvRaw reads it there.
func TestRingZeroCopy(t *testing.T) {
	tx, rx, err := endpoints.RingPair[[]byte](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	if err := tx.SendRaw(ctx, 7, 100, func(room []byte) (int, error) {
		if len(room) != 100 {
			t.Errorf("room of %d bytes, want 100", len(room))
		}
		return copy(room, "written in place"), nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := tx.SendRaw(ctx, 0, 1<<20, func([]byte) (int, error) { return 0, nil }); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Fatalf("an oversized reservation: %v", err)
	}
	err = rx.RecvRaw(ctx, func(tag uint32, msg []byte) error {
		if string(msg) != "written in place" || tag != 7 {
			t.Errorf("RecvRaw got %q, tag %d", msg, tag)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, []byte("next")); err != nil {
		t.Fatal(err)
	}
	if got, err := rx.Recv(ctx); err != nil || string(got) != "next" {
		t.Fatalf("Recv after RecvRaw = %q, %v", got, err)
	}
}

// RecvRaw reads the record in the shared memory itself: a byte changed
// there through another mapping of the ring shows in the slice read gets.
func TestRingRecvRawIsInPlace(t *testing.T) {
	m, err := endpoints.NewMemfd("ring-in-place", 256+4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := endpoints.FormatRing(m); err != nil {
		t.Fatal(err)
	}
	tx, err := endpoints.RingSender[[]byte](m, ipcchan.WithHandshake(false))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx, err := endpoints.RingReceiver[[]byte](m, ipcchan.WithHandshake(false))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	if err := tx.Send(ctx, []byte("in-place-marker")); err != nil {
		t.Fatal(err)
	}
	err = rx.RecvRaw(ctx, func(_ uint32, msg []byte) error {
		at := strings.Index(string(m.Bytes()), "in-place-marker")
		if at < 0 {
			return errors.New("the record is not in the ring")
		}
		m.Bytes()[at] = 'X'
		if string(msg) != "Xn-place-marker" {
			return fmt.Errorf("read got %q after the ring's byte changed: a copy, not the record in place", msg)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A fill that fails or claims more than its room sends nothing and frees
// the ring for the next sender; an error from read is returned as it is and
// the message is consumed.
func TestRingZeroCopyErrors(t *testing.T) {
	tx, rx, err := endpoints.RingPair[[]byte](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	boom := errors.New("boom")
	if err := tx.SendRaw(ctx, 0, 8, func(room []byte) (int, error) { copy(room, "TORN"); return 4, boom }); !errors.Is(err, boom) {
		t.Fatalf("SendRaw with a failing fill = %v, want an error wrapping %v", err, boom)
	}
	if err := tx.SendRaw(ctx, 0, 8, func([]byte) (int, error) { return 9, nil }); err == nil || !strings.Contains(err.Error(), "9 bytes of room for 8") {
		t.Fatalf("SendRaw with an overlong count = %v", err)
	}
	if err := tx.SendRaw(ctx, 0, 8, nil); err == nil {
		t.Fatal("SendRaw with a nil fill succeeded")
	}
	for _, m := range []string{"one", "two"} {
		if err := tx.Send(ctx, []byte(m)); err != nil {
			t.Fatalf("Send after failed fills: %v", err)
		}
	}
	if err := rx.RecvRaw(ctx, func(uint32, []byte) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("RecvRaw with a failing read = %v, want an error wrapping %v", err, boom)
	}
	if got, err := rx.Recv(ctx); err != nil || string(got) != "two" {
		t.Fatalf("Recv = %q, %v; want two (one was consumed by the failed read)", got, err)
	}
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("something else arrived: %v", err)
	}
}

func init() {
	// reserve-and-hang takes the ring handed down as "out", reserves a
	// record, fills half of it, says so, and waits to be killed: a writer
	// that dies mid-record, holding the write lock.
	childRoles["reserve-and-hang"] = func() error {
		tx, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			return err
		}
		return tx.SendRaw(context.Background(), 0, 100, func(room []byte) (int, error) {
			copy(room, "TORN-TORN-TORN-TORN-TORN")
			os.Stdout.WriteString("reserved\n")
			for { // until killed (not select {}: a deadlock exit without cgo or on 386)
				time.Sleep(time.Hour)
			}
		})
	}
}

// A writer killed mid-record delivers nothing torn; its lock is taken back
// and the other writers go on — also while the killed process is a zombie
// that its parent has not reaped (kill(pid, 0) still finds it).
func TestRingWriterKilledMidRecord(t *testing.T) {
	for _, reaped := range []bool{true, false} {
		t.Run(fmt.Sprintf("reaped=%v", reaped), func(t *testing.T) { ringWriterKilled(t, reaped) })
	}
}

func ringWriterKilled(t *testing.T, reap bool) {
	tx, rx, err := endpoints.RingPair[[]byte](256+4096, ipcchan.WithSenders(2))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	child, err := tx.File()
	if err != nil {
		t.Fatal(err)
	}
	childTx, err := endpoints.FileSender[[]byte](child)
	child.Close()
	if err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(t, "reserve-and-hang")
	out, _ := cmd.StdoutPipe()
	if err := endpoints.Start(cmd, endpoints.Pass("out", childTx)); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	line := make([]byte, 9)
	if _, err := io.ReadFull(out, line); err != nil || string(line) != "reserved\n" {
		t.Fatalf("child: %q, %v", line, err)
	}
	cmd.Process.Kill()
	if reap {
		cmd.Wait()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tx.Send(ctx, []byte("whole")); err != nil {
		t.Fatalf("Send after the lock holder died: %v", err)
	}
	got, err := rx.Recv(ctx)
	if err != nil || string(got) != "whole" {
		t.Fatalf("Recv = %q, %v; want only the whole record", got, err)
	}
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("something else arrived: %v", err)
	}
}

// SendRaw and RecvRaw are safe for concurrent use with Send and Recv on
// the same ends: many goroutines mixing them deliver every message once,
// whole.
func TestRingZeroCopyConcurrent(t *testing.T) {
	const goroutines, each = 8, 200
	tx, rx, err := endpoints.RingPair[[]byte](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var senders sync.WaitGroup
	for g := range goroutines {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := range each {
				msg := fmt.Sprintf("%d/%d", g, i)
				var err error
				if i%2 == 0 {
					err = tx.SendRaw(ctx, 0, 32, func(room []byte) (int, error) { return copy(room, msg), nil })
				} else {
					err = tx.Send(ctx, []byte(msg))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { senders.Wait(); tx.Close() }()
	var mu sync.Mutex
	seen := map[string]bool{}
	record := func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		if seen[msg] {
			t.Errorf("%q arrived twice", msg)
		}
		seen[msg] = true
	}
	var receivers sync.WaitGroup
	for g := range goroutines {
		receivers.Add(1)
		go func() {
			defer receivers.Done()
			for i := 0; ; i++ {
				var err error
				if (g+i)%2 == 0 {
					err = rx.RecvRaw(ctx, func(_ uint32, msg []byte) error { record(string(msg)); return nil })
				} else {
					var msg []byte
					if msg, err = rx.Recv(ctx); err == nil {
						record(string(msg))
					}
				}
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	receivers.Wait()
	if len(seen) != goroutines*each {
		t.Fatalf("%d messages arrived, want %d", len(seen), goroutines*each)
	}
}

// Rings work in every kind of mapping: POSIX shm and SysV segments too.
func TestRingInNamedMappings(t *testing.T) {
	ipcchantest.CheckFDs(t)
	shm, err := endpoints.CreateShm(fmt.Sprintf("/ipcchan-ring-test-%d", os.Getpid()), 256+4096)
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Close()
	defer shm.Remove()
	sysv, err := endpoints.CreateSysVShm(endpoints.IPCPrivate, 256+4096)
	if err != nil {
		t.Fatal(err)
	}
	defer sysv.Close()
	defer sysv.Remove()
	for _, m := range []*endpoints.Mapping{shm, sysv} {
		if err := endpoints.FormatRing(m); err != nil {
			t.Fatal(err)
		}
		tx, err := endpoints.RingSender[string](m)
		if err != nil {
			t.Fatal(err)
		}
		rx, err := endpoints.RingReceiver[string](m)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		tx.Send(ctx, "through "+m.String())
		tx.Close()
		if v, err := rx.Recv(ctx); err != nil || v != "through "+m.String() {
			t.Fatalf("%v: %q, %v", m, v, err)
		}
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("%v: after Close %v", m, err)
		}
		rx.Close()
	}
	// A mapping that was never formatted is refused.
	raw, _ := endpoints.NewMemfd("plain", 4096)
	defer raw.Close()
	if _, err := endpoints.RingReceiver[string](raw); !errors.Is(err, endpoints.ErrCorrupt) {
		t.Fatalf("an unformatted mapping: %v", err)
	}
}
