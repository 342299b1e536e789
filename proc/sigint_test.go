package proc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/proc"
)

// ctrlCSummary is what a program run under a terminal's Ctrl-C reports.
type ctrlCSummary struct {
	OK, Died, Canceled int      // results: answered, a *WorkerError, the context's error
	Other              []string // any other error
	StopErr            string   // Submit's error (pool) or Pipeline's
	StopCanceled       bool     // it is context.Canceled
	CloseErr           string   // Close's error (pool)
	Stages             []string // how each stage ended (pipeline)
}

// poolUnderCtrlC is a program that runs a pool the way programs do, under
// signal.NotifyContext, feeding it jobs until Ctrl-C; it says "ready" once
// results flow, then reports what became of the jobs.
func poolUnderCtrlC() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	p, err := proc.Start[int64, int64](ctx, proc.Options{Workers: 2, Command: workerCmd("sleep", nil), Restart: true, Retries: 1})
	if err != nil {
		return err
	}
	submitted := make(chan error, 1)
	go func() {
		for {
			if err := p.Submit(ctx, 2); err != nil {
				submitted <- err
				return
			}
		}
	}()
	var s ctrlCSummary
	n := 0
	for r := range p.Results() {
		if n++; n == 50 {
			fmt.Println("ready")
		}
		var we *proc.WorkerError
		switch {
		case r.Err == nil:
			s.OK++
		case errors.As(r.Err, &we):
			if s.Died++; s.Died == 1 {
				s.Other = append(s.Other, r.Err.Error()) // the first, to see how
			}
		case errors.Is(r.Err, context.Canceled):
			s.Canceled++
		default:
			s.Other = append(s.Other, r.Err.Error())
		}
	}
	if err := p.Close(); err != nil {
		s.CloseErr = err.Error()
	}
	serr := <-submitted
	s.StopErr, s.StopCanceled = serr.Error(), errors.Is(serr, context.Canceled)
	return printSummary(s)
}

// pipelineUnderCtrlC is a program that runs an endless pipeline under
// signal.NotifyContext; it says "ready" once numbers flow, then reports
// Pipeline's error and how each stage ended.
func pipelineUnderCtrlC() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// Four stages: a stage dies of SIGINT in the runtime's signal handler,
	// at once, but on a busy machine the parent may stop one first.
	stages := []*exec.Cmd{stageCmd("pass"), stageCmd("double"), stageCmd("pass"), stageCmd("double")}
	n := 0
	err := proc.Pipeline(ctx, stages, feedNumbers(1<<40),
		func(ctx context.Context, rx *ipcchan.Receiver[int64]) error {
			for _, err := range rx.All(ctx) {
				if err != nil {
					return err
				}
				if n++; n == 100 {
					fmt.Println("ready")
				}
			}
			return nil
		})
	var s ctrlCSummary
	if err != nil {
		s.StopErr, s.StopCanceled = err.Error(), errors.Is(err, context.Canceled)
	}
	for _, cmd := range stages {
		s.Stages = append(s.Stages, fmt.Sprint(cmd.ProcessState))
	}
	return printSummary(s)
}

func printSummary(s ctrlCSummary) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	fmt.Printf("summary %s\n", b)
	return nil
}

// runUnderCtrlC runs role as a program in a process group of its own, as a
// shell runs a foreground job, and once it says "ready" sends SIGINT to the
// whole group, as a terminal's Ctrl-C does. It returns the program's
// summary once it has exited, and checks that no process it started is
// left.
func runUnderCtrlC(t *testing.T, role string) ctrlCSummary {
	t.Helper()
	token := "IPCCHAN_TEST_RUN=" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IPCCHAN_TEST_ROLE="+role, token)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	exited := make(chan error, 1)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	timeout := time.After(60 * time.Second)
	fail := func(format string, args ...any) {
		syscall.Kill(-pgid, syscall.SIGKILL)
		for range lines {
		}
		<-exited
		t.Fatalf(format, args...)
	}
	var summary *ctrlCSummary
	for summary == nil {
		select {
		case line, ok := <-lines:
			switch {
			case !ok:
				fail("the program ended without a summary")
			case line == "ready":
				if err := syscall.Kill(-pgid, syscall.SIGINT); err != nil {
					fail("Ctrl-C: %v", err)
				}
			case strings.HasPrefix(line, "summary "):
				summary = new(ctrlCSummary)
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "summary ")), summary); err != nil {
					fail("%q: %v", line, err)
				}
			}
		case <-timeout:
			fail("no summary within a minute of Ctrl-C")
		}
	}
	for range lines {
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the program ended with %v after Ctrl-C, want a clean exit", err)
		}
	case <-timeout:
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-exited
		t.Fatal("the program did not exit after its summary")
	}
	checkNoProcessWith(t, token)
	return *summary
}

// checkNoProcessWith fails t if a process whose environment holds env
// (which every process a test program starts inherits) is still there a
// few seconds after the program ended.
func checkNoProcessWith(t *testing.T, env string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := processesWith(env)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v outlived the program that started them", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func processesWith(env string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue // gone, or a zombie
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if kv == env {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// A terminal's Ctrl-C reaches the whole foreground process group. The
// pool's workers must not die of it: the program's context is cancelled,
// the workers finish what they hold and exit, no job is reported as a
// worker's death, the jobs not submitted are refused with
// context.Canceled, and no process is left.
func TestPoolCtrlC(t *testing.T) {
	s := runUnderCtrlC(t, "pool-ctrl-c")
	t.Logf("%+v", s)
	if s.Died != 0 || len(s.Other) != 0 { // the first death is in Other
		t.Errorf("%d jobs reported as a worker's death, other failures %q; want none", s.Died, s.Other)
	}
	if !s.StopCanceled {
		t.Errorf("Submit after Ctrl-C = %s, want an error wrapping context.Canceled", s.StopErr)
	}
	if s.CloseErr != "" {
		t.Errorf("Close after Ctrl-C = %s, want nil", s.CloseErr)
	}
	if s.OK < 50 {
		t.Errorf("%d jobs answered, want at least the 50 before Ctrl-C", s.OK)
	}
}

// The same for a pipeline: its stages do not die of the terminal's
// SIGINT; the cancelled context stops them, and Pipeline returns
// context.Canceled.
func TestPipelineCtrlC(t *testing.T) {
	s := runUnderCtrlC(t, "pipeline-ctrl-c")
	t.Logf("%+v", s)
	if !s.StopCanceled {
		t.Errorf("Pipeline after Ctrl-C = %q, want context.Canceled", s.StopErr)
	}
	for i, st := range s.Stages {
		if st != "signal: killed" && st != "exit status 0" {
			t.Errorf("stage %d ended with %q, want stopped by the pipeline (killed) or a clean exit", i, st)
		}
	}
}
