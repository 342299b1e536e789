package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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

// Zero-copy: reserve and commit in the ring, peek and release in place.
func TestRingZeroCopy(t *testing.T) {
	tx, rx, err := endpoints.RingPair[[]byte](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	w := tx.Transport().(*endpoints.Ring)
	r := rx.Transport().(*endpoints.Ring)
	space, err := w.Reserve(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	n := copy(space, "written in place")
	if err := w.Commit(7, n); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Reserve(ctx, 1<<20); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Fatalf("an oversized reservation: %v", err)
	}
	p, tag, err := r.Peek(ctx)
	if err != nil || string(p) != "written in place" || tag != 7 {
		t.Fatalf("Peek = %q, %d, %v", p, tag, err)
	}
	if _, _, err := r.Peek(ctx); err == nil {
		t.Fatal("a second Peek before Release succeeded")
	}
	r.Release()
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("after Release: %v", err)
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
		space, err := tx.Transport().(*endpoints.Ring).Reserve(context.Background(), 100)
		if err != nil {
			return err
		}
		copy(space, "TORN-TORN-TORN-TORN-TORN")
		os.Stdout.WriteString("reserved\n")
		select {}
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
	child, err := tx.Transport().(*endpoints.Ring).File()
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

// The zero-copy calls and the typed ones do not mix on one end while a
// record is held: Recv between Peek and Release would deliver the peeked
// record again and then lose the next one, and Send between Reserve and
// Commit would wait for ever for the lock its own end holds. Both are
// refused; after Release or Commit everything goes on in order.
func TestRingZeroCopyMixRefused(t *testing.T) {
	tx, rx, err := endpoints.RingPair[[]byte](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := tx.Transport().(*endpoints.Ring)
	r := rx.Transport().(*endpoints.Ring)

	space, err := w.Reserve(ctx, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, []byte("second")); err == nil || !strings.Contains(err.Error(), "Commit") {
		t.Fatalf("Send during a reservation = %v, want an error saying to Commit first", err)
	}
	if err := tx.TrySend([]byte("second")); err == nil || !strings.Contains(err.Error(), "Commit") {
		t.Fatalf("TrySend during a reservation = %v, want an error saying to Commit first", err)
	}
	if err := w.Commit(0, copy(space, "first")); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"second", "third"} {
		if err := tx.Send(ctx, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}

	p, _, err := r.Peek(ctx)
	if err != nil || string(p) != "first" {
		t.Fatalf("Peek = %q, %v", p, err)
	}
	if _, err := rx.Recv(ctx); err == nil || !strings.Contains(err.Error(), "Release") {
		t.Fatalf("Recv before Release = %v, want an error saying to Release first", err)
	}
	if _, err := rx.TryRecv(); err == nil || !strings.Contains(err.Error(), "Release") {
		t.Fatalf("TryRecv before Release = %v, want an error saying to Release first", err)
	}
	r.Release()
	for _, want := range []string{"second", "third"} {
		if got, err := rx.Recv(ctx); err != nil || string(got) != want {
			t.Fatalf("Recv = %q, %v; want %q", got, err, want)
		}
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
