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
