// Command cstage runs a proc.Pipeline whose middle stage is a C program
// built on clients/c/ipcchan.h, between Go stages that do not know it:
//
//	parent --Reading °C--> check (Go) --Reading °C--> c/stage.c --Reading °F--> format (Go) --string--> parent
//
//	go run ./examples/cstage -n 20
//
// Reading is struct{ ID uint32; Temp float64 }, which the Go stages send
// with its default codec (binary-le); the C stage (c/stage.c, the program
// README's "From C" section opens with) describes the same struct with
// ipcchan.h, so its hello matches theirs, and converts each reading to
// Fahrenheit. The C stage is built with gcc on the fly; without gcc the
// command says so and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/proc"
)

// Reading is the element type of every channel but the last.
type Reading struct {
	ID   uint32
	Temp float64
}

func main() {
	n := flag.Int("n", 20, "readings to feed")
	stage := flag.String("stage", "", "run as this Go stage (check, format)")
	flag.Parse()
	var err error
	if *stage != "" {
		err = runStage(*stage)
	} else {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		err = run(ctx, *n)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "cstage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int) error {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		fmt.Println("cstage needs gcc to build its C stage; none is installed")
		return nil
	}
	dir, err := os.MkdirTemp("", "cstage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cStage, err := buildStage(gcc, dir)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	goStage := func(name string) *exec.Cmd {
		cmd := exec.Command(exe, "-stage", name)
		cmd.Stderr = os.Stderr
		return cmd
	}
	c := exec.Command(cStage)
	c.Stderr = os.Stderr
	return proc.Pipeline(ctx, []*exec.Cmd{goStage("check"), c, goStage("format")},
		func(ctx context.Context, in *ipcchan.Sender[Reading]) error {
			for i := range n {
				// Every seventh reading is out of range: the check stage drops it.
				temp := float64(i%40) - 10
				if i%7 == 6 {
					temp = 1000
				}
				if err := in.Send(ctx, Reading{uint32(i), temp}); err != nil {
					return err
				}
			}
			return nil
		},
		func(ctx context.Context, out *ipcchan.Receiver[string]) error {
			for line, err := range out.All(ctx) {
				if err != nil {
					return err
				}
				fmt.Println(line)
			}
			return nil
		})
}

// runStage is a Go stage: check drops readings out of range, format
// writes each one as a line.
func runStage(name string) error {
	ctx := context.Background()
	in, err := endpoints.InheritReceiver[Reading]("in")
	if err != nil {
		return err
	}
	defer in.Close()
	switch name {
	case "check":
		out, err := endpoints.InheritSender[Reading]("out")
		if err != nil {
			return err
		}
		defer out.Close()
		for r, err := range in.All(ctx) {
			if err != nil {
				return err
			}
			if r.Temp >= -90 && r.Temp <= 60 {
				if err := out.Send(ctx, r); err != nil {
					return err
				}
			}
		}
		return nil
	case "format":
		out, err := endpoints.InheritSender[string]("out")
		if err != nil {
			return err
		}
		defer out.Close()
		for r, err := range in.All(ctx) {
			if err != nil {
				return err
			}
			if err := out.Send(ctx, fmt.Sprintf("sensor %2d: %5.1f °F", r.ID, r.Temp)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("no stage %q", name)
}

// buildStage compiles c/stage.c against clients/c/ipcchan.h into dir and
// returns the program's path. Both are found next to this source file
// (go run ./examples/cstage from the repository).
func buildStage(gcc, dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot find stage.c: run cstage with go run from the repository")
	}
	src := filepath.Join(filepath.Dir(file), "c", "stage.c")
	include := filepath.Join(filepath.Dir(file), "..", "..", "clients", "c")
	if _, err := os.Stat(src); err != nil {
		return "", fmt.Errorf("cannot find stage.c (%w): run cstage with go run from the repository", err)
	}
	bin := filepath.Join(dir, "stage")
	if out, err := exec.Command(gcc, "-std=c11", "-O2", "-Wall", "-Wextra", "-I", include, "-o", bin, src, "-lrt").CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %v\n%s", err, out)
	}
	return bin, nil
}
