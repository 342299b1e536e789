package endpoints_test

import (
	"context"
	"fmt"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// An event's flag, counter and bit set, and its Receiver in a Select.
// Here everything is in one process; every call works the same from any
// process that holds the event (see the example of InheritEvent).
func ExampleEvent() {
	ev, err := endpoints.NewEvent()
	if err != nil {
		panic(err)
	}
	defer ev.Close()
	ctx := context.Background()

	ev.Set() // wakes every waiter, in every process
	fmt.Println("set:", ev.IsSet())
	ev.Wait(ctx) // returns at once while set
	ev.Clear()

	n, _ := ev.Notify(2) // adds to the counter, sets the event, wakes everyone
	fmt.Println("count:", n)
	seen, _ := ev.WaitCount(ctx, 0) // at once: the count is no longer 0
	fmt.Println("waiter saw:", seen)

	ev.Raise(1<<3 | 1) // ORs bits in, sets the event, wakes everyone
	bits, _ := ev.Take()
	fmt.Printf("bits: %#x\n", bits)

	rx, err := ev.Receiver() // made while set: its first receive is at once
	if err != nil {
		panic(err)
	}
	defer rx.Close()
	ipcchan.Select(ctx, ipcchan.OnRecv(rx, func(count uint64) {
		fmt.Println("news, count", count)
	}))
	// Output:
	// set: true
	// count: 2
	// waiter saw: 2
	// bits: 0x9
	// news, count 2
}

// An event handed to a child process: the child waits for the go-ahead,
// does its work, and reports through a second event's counter.
func ExampleInheritEvent() {
	start, err := endpoints.NewEvent()
	if err != nil {
		panic(err)
	}
	done, err := endpoints.NewEvent()
	if err != nil {
		panic(err)
	}
	defer done.Close()
	defer start.Close()
	cmd := startAgain("event-worker")
	// Share: the events stay open here too, to set and wait on.
	if err := endpoints.Start(cmd, endpoints.Share("start", start), endpoints.Share("done", done)); err != nil {
		panic(err)
	}

	ctx := context.Background()
	start.Set() // the go-ahead
	n, err := done.WaitCount(ctx, 0)
	if err != nil {
		panic(err)
	}
	fmt.Println("the worker reported", n)
	if err := cmd.Wait(); err != nil {
		panic(err)
	}
	// Output:
	// the worker reported 42
}

func init() { children["event-worker"] = eventWorker }

// eventWorker is the child of ExampleInheritEvent.
func eventWorker(ctx context.Context) error {
	start, err := endpoints.InheritEvent("start")
	if err != nil {
		return err
	}
	defer start.Close()
	done, err := endpoints.InheritEvent("done")
	if err != nil {
		return err
	}
	defer done.Close()
	if err := start.Wait(ctx); err != nil {
		return err
	}
	_, err = done.Notify(42)
	return err
}
