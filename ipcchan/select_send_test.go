package ipcchan_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
)

// A send case on a nil Sender is never ready, like a send on a nil
// channel; on a closed one Select returns the case with os.ErrClosed.
func TestSelectSendNilAndClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if i, err := ipcchan.Select(ctx, ipcchan.OnSend[int](nil, 1, nil)); i != -1 || err != context.DeadlineExceeded {
		t.Fatalf("Select with a nil Sender = %d, %v", i, err)
	}
	tx, rx := memPair[int](1)
	defer rx.Close()
	tx.Close()
	i, err := ipcchan.Select(context.Background(), ipcchan.OnSend(tx, 1, func() { t.Error("a closed Sender's case ran") }))
	if i != 0 || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Select on a closed Sender = %d, %v; want 0, os.ErrClosed", i, err)
	}
}

// A send case waits for room: a Select blocked on a full Sender sends once
// the receiver takes a value, and Close of the Sender wakes it.
func TestSelectSendWaitsForRoom(t *testing.T) {
	tx, rx := memPair[int](1)
	defer rx.Close()
	defer tx.Close()
	ctx := context.Background()
	if err := tx.Send(ctx, 1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := ipcchan.Select(ctx, ipcchan.OnSend(tx, 2, nil))
		done <- err
	}()
	for _, want := range []int{1, 2} {
		if v, err := rx.Recv(ctx); err != nil || v != want {
			t.Fatalf("Recv = %d, %v; want %d", v, err, want)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if err := tx.Send(ctx, 3); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := ipcchan.Select(ctx, ipcchan.OnSend(tx, 4, nil))
		done <- err
	}()
	time.Sleep(5 * time.Millisecond) // let the Select wait; it must wake either way
	tx.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Select woken by Close = %v, want os.ErrClosed", err)
	}
}

// Many goroutines select to send on one Sender, each beside a receive
// case that is sometimes ready: every value sent by a chosen case arrives
// exactly once, and none of a losing case does.
func TestSelectSendConcurrent(t *testing.T) {
	const goroutines, each = 8, 300
	tx, rx := memPair[int](4)
	defer rx.Close()
	pokeTx, poke := memPair[int](goroutines)
	defer poke.Close()
	defer pokeTx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < each; {
				if k%7 == 0 {
					pokeTx.TrySend(g)
				}
				v := g*each + k
				if _, err := ipcchan.Select(ctx, ipcchan.OnSend(tx, v, func() { k++ }), ipcchan.OnRecv(poke, nil)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		tx.Close()
	}()
	var got []int
	for v, err := range rx.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	slices.Sort(got)
	if len(got) != goroutines*each {
		t.Fatalf("received %d values, want %d", len(got), goroutines*each)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("value %d missing or duplicated (got %d at %d)", i, v, i)
		}
	}
}
