package proc

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/ipcchan/go/ipcchan"
)

// A job dropped because the pool's context ended carries that context's
// error and cause, beside the reason it was dropped; without a context
// ending, only the reason.
func TestStoppedWrapsTheContext(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	p := &Pool[int, int]{parent: ctx}
	if err := p.stopped("retry", ipcchan.ErrPeerGone); !errors.Is(err, ipcchan.ErrPeerGone) || errors.Is(err, context.Canceled) {
		t.Fatalf("before the end: %v", err)
	}
	cancel(errors.New("interrupt signal received"))
	err := p.stopped("retry", ipcchan.ErrPeerGone)
	if !errors.Is(err, ipcchan.ErrPeerGone) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupt signal received") {
		t.Fatalf("after the end: %v", err)
	}
	if err := p.stopped("submit", os.ErrClosed); !errors.Is(err, os.ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("submit after the end: %v", err)
	}
	t.Log(err)
}
