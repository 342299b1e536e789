package endpoints_test

import (
	"context"
	"fmt"
	"io"
	"log"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// A publisher and two subscribers of a broadcast in a memfd: each
// subscriber gets every value, then io.EOF. (Across processes, hand a
// subscriber to a child with endpoints.Pass, or make the broadcast in a
// POSIX shared memory object and Subscribe by name in the others.)
func ExampleBroadcast() {
	ctx := context.Background()
	m, err := endpoints.NewMemfd("quotes", 1<<20)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	pub, err := endpoints.Broadcast[string](m, ipcchan.WithSubscribers(8)) // lossless; WithLossy for Tokio-style lag
	if err != nil {
		log.Fatal(err)
	}
	a, _ := endpoints.Subscribe[string](m) // from the next value on; WithReplay: from the oldest held
	b, _ := endpoints.Subscribe[string](m)
	defer a.Close()
	defer b.Close()
	for _, q := range []string{"ACME 12.5", "INIT 3.25"} {
		if err := pub.Send(ctx, q); err != nil {
			log.Fatal(err)
		}
	}
	pub.Close() // end of stream for every subscriber
	for _, sub := range []*ipcchan.Receiver[string]{a, b} {
		for q, err := range sub.All(ctx) { // a lossy subscriber that lags gets an ipcchan.ErrLagged error here
			if err != nil && err != io.EOF {
				log.Fatal(err)
			}
			fmt.Println(q)
		}
	}
	// Output:
	// ACME 12.5
	// INIT 3.25
	// ACME 12.5
	// INIT 3.25
}
