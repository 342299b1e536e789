package proc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/proc"
)

// stage runs as a pipeline stage in a re-executed test binary.
func stage(kind string) error {
	ctx := context.Background()
	in, err := endpoints.InheritReceiver[int64]("in")
	if err != nil {
		return err
	}
	defer in.Close()
	if kind == "format" {
		out, err := endpoints.InheritSender[string]("out")
		if err != nil {
			return err
		}
		defer out.Close()
		for v, err := range in.All(ctx) {
			if err != nil {
				return err
			}
			if err := out.Send(ctx, strconv.FormatInt(v, 10)); err != nil {
				return err
			}
		}
		return nil
	}
	out, err := endpoints.InheritSender[int64]("out")
	if err != nil {
		return err
	}
	defer out.Close()
	for v, err := range in.All(ctx) {
		if err != nil {
			return err
		}
		switch kind {
		case "double":
			v *= 2
		case "fail-at-500":
			if v == 500 {
				os.Exit(4)
			}
		}
		if err := out.Send(ctx, v); err != nil {
			return err
		}
	}
	return nil
}

func stageCmd(kind string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IPCCHAN_TEST_ROLE=stage", "IPCCHAN_TEST_STAGE="+kind)
	cmd.Stderr = os.Stderr
	return cmd
}

func feedNumbers(n int64) func(context.Context, *ipcchan.Sender[int64]) error {
	return func(ctx context.Context, tx *ipcchan.Sender[int64]) error {
		for i := range n {
			if err := tx.Send(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestPipelineThreeStages(t *testing.T) {
	stages := []*exec.Cmd{stageCmd("double"), stageCmd("pass"), stageCmd("format")}
	var got []string
	err := proc.Pipeline(context.Background(), stages, feedNumbers(1000),
		func(ctx context.Context, rx *ipcchan.Receiver[string]) error {
			for s, err := range rx.All(ctx) {
				if err != nil {
					return err
				}
				got = append(got, s)
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1000 || got[0] != "0" || got[999] != "1998" {
		t.Fatalf("%d results, first %q last %q", len(got), got[0], got[len(got)-1])
	}
	for i, cmd := range stages {
		if cmd.ProcessState == nil || !cmd.ProcessState.Success() {
			t.Errorf("stage %d: %v", i, cmd.ProcessState)
		}
	}
}

// A failing stage stops the whole pipeline and its error is the one
// returned; every stage is gone.
func TestPipelineFailingStage(t *testing.T) {
	stages := []*exec.Cmd{stageCmd("pass"), stageCmd("fail-at-500"), stageCmd("format")}
	err := proc.Pipeline(context.Background(), stages, feedNumbers(1_000_000),
		func(ctx context.Context, rx *ipcchan.Receiver[string]) error {
			for _, err := range rx.All(ctx) {
				if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
					return err
				}
			}
			return nil
		})
	if err == nil || !strings.Contains(err.Error(), "stage 1") || !strings.Contains(err.Error(), "exit status 4") {
		t.Fatalf("Pipeline = %v, want stage 1's exit status 4", err)
	}
	for i, cmd := range stages {
		if cmd.ProcessState == nil {
			t.Errorf("stage %d still running", i)
		}
	}
}

// Cancelling the context stops every stage and returns context.Canceled.
func TestPipelineCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stages := []*exec.Cmd{stageCmd("pass"), stageCmd("double")}
	n := 0
	err := proc.Pipeline(ctx, stages, feedNumbers(1<<40),
		func(ctx context.Context, rx *ipcchan.Receiver[int64]) error {
			for _, err := range rx.All(ctx) {
				if err != nil {
					return err
				}
				if n++; n == 100 {
					cancel()
				}
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pipeline = %v, want context.Canceled", err)
	}
	for i, cmd := range stages {
		if cmd.ProcessState == nil {
			t.Errorf("stage %d still running", i)
		}
	}
}

// A failed stage is named by its command line, not only its program's
// path: three stages running the same program are told apart.
func TestPipelineStageNamedByArgs(t *testing.T) {
	err := proc.Pipeline[int64, int64](context.Background(), []*exec.Cmd{exec.Command("sh", "-c", "exit 7")}, nil, nil)
	if want := "stage 0 (sh -c 'exit 7'): exit status 7"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Pipeline = %v, want %q", err, want)
	}
	failing := stageCmd("fail-at-500")
	failing.Args = append(failing.Args, "it's stage 1")
	stages := []*exec.Cmd{stageCmd("pass"), failing, stageCmd("format")}
	err = proc.Pipeline(context.Background(), stages, feedNumbers(1_000_000),
		func(ctx context.Context, rx *ipcchan.Receiver[string]) error {
			for range rx.All(ctx) {
			}
			return nil
		})
	want := fmt.Sprintf(`stage 1 (%s '-test.run=^$' 'it'\''s stage 1'): exit status 4`, filepath.Base(os.Args[0]))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Pipeline = %v, want %q", err, want)
	}
}
