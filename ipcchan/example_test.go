package ipcchan_test

import (
	"context"
	"fmt"
	"io"

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
