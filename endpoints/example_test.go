package endpoints_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ipcchan/go/endpoints"
)

// A typed channel over a pipe. Here both ends are in one process; hand one
// to a child with endpoints.Start to cross a process boundary (see the
// example of Start).
func ExamplePipePair() {
	type Job struct {
		ID   int64
		Cost float64
	}
	tx, rx, err := endpoints.PipePair[Job]()
	if err != nil {
		panic(err)
	}
	defer rx.Close()
	ctx := context.Background()
	go func() {
		for i := range int64(3) {
			tx.Send(ctx, Job{ID: i, Cost: float64(i) * 1.5})
		}
		tx.Close() // the receiver's range ends after the last job
	}()
	for job, err := range rx.All(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Printf("%+v\n", job)
	}
	// Output:
	// {ID:0 Cost:0}
	// {ID:1 Cost:1.5}
	// {ID:2 Cost:3}
}

// A FIFO connects processes that know only its path.
func ExampleOpenFIFOReceiver() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "greetings")
	if err := endpoints.CreateFIFO(path); err != nil { // mode 0600, fails if path exists
		panic(err)
	}
	ctx := context.Background()
	rx, err := endpoints.OpenFIFOReceiver[string](ctx, path) // does not wait for a writer
	if err != nil {
		panic(err)
	}
	defer rx.Close()
	tx, err := endpoints.OpenFIFOSender[string](ctx, path) // waits for a reader
	if err != nil {
		panic(err)
	}
	tx.Send(ctx, "hello from another process")
	tx.Close()
	msg, _ := rx.Recv(ctx)
	fmt.Println(msg)
	// Output: hello from another process
}
