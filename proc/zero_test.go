package proc_test

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/ipcchan/go/internal/zerotest"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/proc"
)

// A Pool nobody started, nil pools and the error types: no method panics or
// hangs; a nil context is an error.
func TestZeroValuesAndNilContext(t *testing.T) {
	zerotest.Check(t,
		&proc.Pool[int, int]{}, (*proc.Pool[int, int])(nil),
		&proc.JobError{}, (*proc.JobError)(nil),
		&proc.WorkerError{}, (*proc.WorkerError)(nil))

	var p proc.Pool[int, int]
	if err := p.Submit(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "proc.Start") {
		t.Errorf("Submit on a zero Pool = %v, want an error saying to start one", err)
	}
	if _, ok := <-p.Results(); ok {
		t.Error("a zero Pool delivered a result")
	}
	nilCtx := context.Context(nil)
	if _, err := proc.Start[int, int](nilCtx, proc.Options{Workers: 1}); err == nil || !strings.Contains(err.Error(), "context.Background()") {
		t.Errorf("Start with a nil context = %v", err)
	}
	err := proc.Pipeline[int, int](nilCtx, []*exec.Cmd{exec.Command("true")},
		func(context.Context, *ipcchan.Sender[int]) error { return nil },
		func(context.Context, *ipcchan.Receiver[int]) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "context.Background()") {
		t.Errorf("Pipeline with a nil context = %v", err)
	}
	if err := proc.Serve(nilCtx, func(context.Context, int) (int, error) { return 0, nil }); !errors.Is(err, proc.ErrNotWorker) && (err == nil || !strings.Contains(err.Error(), "context.Background()")) {
		t.Errorf("Serve with a nil context = %v", err)
	}
}
