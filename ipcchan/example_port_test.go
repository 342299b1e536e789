package ipcchan_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// Porting `close(jobs)` and a `done` channel: the producer ends the stream
// with Close, and the consumer's range ends after the last value, however
// many were still in flight. (A done channel closed right after the last
// Send would race those values: a Send returns once the value is
// committed to the transport, not once it is received, as on a buffered
// channel.)
func ExampleSender_Close() {
	jobs, in, err := endpoints.PipePair[int]()
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	go func() { // the producer: in real life another process
		for j := 1; j <= 1000; j++ {
			jobs.Send(ctx, j) // returns once the value is in the pipe
		}
		jobs.Close() // close(jobs): the end of the stream, after every value
	}()
	defer in.Close()
	n := 0
	for _, err := range in.All(ctx) { // for j := range jobs
		if err != nil {
			panic(err)
		}
		n++
	}
	fmt.Println("received", n)
	// Output: received 1000
}

// Porting `select { case jobs <- j: case <-ctx.Done(): }`: Send takes the
// context, so the select is the call itself. It returns ctx.Err() when ctx
// ends first, having sent nothing.
func ExampleSender_Send() {
	jobs, in, err := endpoints.RingPair[int](4096)
	if err != nil {
		panic(err)
	}
	defer in.Close()
	defer jobs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	sent := 0
	for {
		// Nobody receives: the ring fills, then Send waits until ctx ends.
		if err := jobs.Send(ctx, sent); err != nil {
			fmt.Println(errors.Is(err, context.DeadlineExceeded), "after a full ring")
			break
		}
		sent++
	}
	got := 0
	for {
		if _, err := in.TryRecv(); err != nil {
			break
		}
		got++
	}
	fmt.Println("every value Send accepted is there:", got == sent)
	// Output:
	// true after a full ring
	// every value Send accepted is there: true
}

// Porting `v, ok := <-ch`: Chan gives a native channel for a select
// statement; when it closes, Err says why — nil at the end of the stream,
// the error otherwise (a value that does not decode, the peer killed).
func ExampleReceiver_Err() {
	tx, rx, err := endpoints.PipePair[string]()
	if err != nil {
		panic(err)
	}
	defer rx.Close()
	ctx := context.Background()
	go func() {
		tx.Send(ctx, "last words")
		tx.Close()
	}()
	for v := range ipcchan.Chan(ctx, rx) {
		fmt.Println(v)
	}
	fmt.Println("closed because:", rx.Err(), rx.Err() == nil)
	_, err = rx.Recv(ctx)
	fmt.Println("and Recv says:", err == io.EOF)
	// Output:
	// last words
	// closed because: <nil> true
	// and Recv says: true
}
