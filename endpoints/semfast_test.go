package endpoints_test

import (
	"context"
	"testing"

	"github.com/ipcchan/go/endpoints"
)

// A token channel's Recv of a token that is there, and its Send, allocate
// nothing: Recv takes the token before it sets up a cancellable wait (it
// made a context, a cancel func and a map entry per token).
func TestSemaphoreTokenRecvAllocs(t *testing.T) {
	m, err := endpoints.NewMemfd("tokallocs", 64)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := endpoints.InitSemaphore(m, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := endpoints.SemaphoreSender(s)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx, err := endpoints.SemaphoreReceiver(s)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := rx.Recv(ctx); err != nil {
			failed = err
		}
		if err := tx.Send(ctx, struct{}{}); err != nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	if allocs != 0 {
		t.Fatalf("Recv+Send of a token: %v allocations, want 0", allocs)
	}
}
