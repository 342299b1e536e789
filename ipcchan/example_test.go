package ipcchan_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// Select waits on receivers of different element types at once.
func ExampleSelect() {
	type Job struct{ ID int64 }
	type Stop struct{ Reason string }
	jobsTx, jobs, _ := endpoints.PipePair[Job]()
	stopsTx, stops, _ := endpoints.PipePair[Stop]()
	defer jobs.Close()
	defer stops.Close()
	ctx := context.Background()
	jobsTx.Send(ctx, Job{ID: 7})
	jobsTx.Close()
	stopsTx.Close()

	cases := []ipcchan.Case{
		ipcchan.OnRecv(jobs, func(j Job) { fmt.Println("job", j.ID) }),
		ipcchan.OnRecv(stops, func(s Stop) { fmt.Println("stop:", s.Reason) }),
	}
	for live := len(cases); live > 0; {
		i, err := ipcchan.Select(ctx, cases...)
		if err == io.EOF {
			cases[i] = ipcchan.Case{} // like setting a channel to nil
			live--
			continue
		}
		if err != nil {
			panic(err)
		}
	}
	// Output: job 7
}

// Chan bridges a Receiver to a native select statement, beside a timeout
// or any other channel; Err says why the channel closed.
func ExampleChan() {
	tx, rx, err := endpoints.PipePair[string]()
	if err != nil {
		panic(err)
	}
	defer rx.Close()
	ctx := context.Background()
	go func() {
		tx.Send(ctx, "first")
		tx.Send(ctx, "second")
		tx.Close()
	}()
	values := ipcchan.Chan(ctx, rx) // call it in a loop if you like: the same channel comes back
	timeout := time.After(time.Minute)
	for {
		select {
		case v, ok := <-values:
			if !ok {
				fmt.Println("closed:", rx.Err()) // nil: the end of the stream
				return
			}
			fmt.Println(v)
		case <-timeout:
			fmt.Println("nothing for a minute")
			return
		}
	}
	// Output:
	// first
	// second
	// closed: <nil>
}

// Select mixes send and receive cases, as a select statement does: this
// dispatcher hands out jobs while it collects results, whichever can go on
// first, without a goroutine per direction.
func ExampleOnSend() {
	jobsTx, jobs, _ := endpoints.PipePair[int]()
	resultsTx, results, _ := endpoints.PipePair[int]()
	ctx := context.Background()
	go func() { // the worker: in real life another process
		defer resultsTx.Close()
		for j, err := range jobs.All(ctx) {
			if err != nil {
				return
			}
			resultsTx.Send(ctx, j*j)
		}
	}()
	defer results.Close()

	next, sum := 1, 0
	for live := true; live; {
		send := ipcchan.OnSend(jobsTx, next, func() { next++ })
		if next > 100 {
			send = ipcchan.Case{} // all sent: like a nil channel
		}
		i, err := ipcchan.Select(ctx, send, ipcchan.OnRecv(results, func(r int) { sum += r }))
		switch {
		case i == 0 && next > 100:
			jobsTx.Close() // the end of the jobs: the worker's range ends
		case err == io.EOF:
			live = false // the worker closed its results
		case err != nil:
			panic(err)
		}
	}
	fmt.Println("sum of squares 1..100:", sum)
	// Output: sum of squares 1..100: 338350
}
