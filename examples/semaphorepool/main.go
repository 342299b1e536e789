// Command semaphorepool runs worker processes that share a limit: at most
// K of them work at once, enforced by a named POSIX semaphore — the same
// object a C program's sem_open("/name") opens.
//
//	go run ./examples/semaphorepool -workers 6 -limit 2
//
// Each worker takes a token (Acquire) before each job and gives it back
// (Release) after; a shared counter in a memfd mapping records how many
// work at the same moment, and the parent checks it never passed the
// limit.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"github.com/ipcchan/go/endpoints"
)

// Gauge is shared by every process: how many work now, and the most ever.
type Gauge struct {
	Now, Max, Done int32
}

func main() {
	workers := flag.Int("workers", 6, "worker processes")
	limit := flag.Int("limit", 2, "how many may work at once")
	jobs := flag.Int("jobs", 5, "jobs per worker")
	flag.Parse()
	var err error
	if name := os.Getenv("SEMPOOL_SEM"); name != "" {
		err = worker(name, *jobs)
	} else {
		err = run(*workers, *limit, *jobs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "semaphorepool:", err)
		os.Exit(1)
	}
}

func run(workers, limit, jobs int) error {
	name := fmt.Sprintf("/semaphorepool-%d", os.Getpid())
	sem, err := endpoints.CreateSemaphore(name, uint32(limit))
	if err != nil {
		return err
	}
	defer sem.Close()
	defer sem.Remove()
	mem, err := endpoints.NewMemfd("gauge", 64)
	if err != nil {
		return err
	}
	defer mem.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now()
	var cmds []*exec.Cmd
	for range workers {
		f, err := mem.File()
		if err != nil {
			return err
		}
		cmd := exec.Command(exe, "-jobs", fmt.Sprint(jobs))
		cmd.Env = append(os.Environ(), "SEMPOOL_SEM="+name)
		cmd.ExtraFiles = []*os.File{f}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		err = cmd.Start()
		f.Close()
		if err != nil {
			return err
		}
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			return err
		}
	}
	gauge, err := endpoints.ViewOf[Gauge](mem, 0)
	if err != nil {
		return err
	}
	g, _ := gauge.Load()
	fmt.Printf("%d workers did %d jobs in %v; at most %d worked at once (limit %d)\n",
		workers, g.Done, time.Since(start).Round(time.Millisecond), g.Max, limit)
	if int(g.Max) > limit || int(g.Done) != workers*jobs {
		return fmt.Errorf("the limit did not hold")
	}
	return nil
}

func worker(name string, jobs int) error {
	sem, err := endpoints.OpenSemaphore(name)
	if err != nil {
		return err
	}
	defer sem.Close()
	f := os.NewFile(3, "gauge")
	mem, err := endpoints.MappingFromFile(f)
	f.Close()
	if err != nil {
		return err
	}
	defer mem.Close()
	gauge, err := endpoints.ViewOf[Gauge](mem, 0)
	if err != nil {
		return err
	}
	ctx := context.Background()
	for range jobs {
		if err := sem.Acquire(ctx, 1); err != nil {
			return err
		}
		gauge.Update(func(g *Gauge) {
			now := atomic.AddInt32(&g.Now, 1)
			for m := atomic.LoadInt32(&g.Max); now > m && !atomic.CompareAndSwapInt32(&g.Max, m, now); m = atomic.LoadInt32(&g.Max) {
			}
		})
		time.Sleep(5 * time.Millisecond) // the job
		gauge.Update(func(g *Gauge) { atomic.AddInt32(&g.Now, -1); atomic.AddInt32(&g.Done, 1) })
		sem.Release(1)
	}
	return nil
}
