// Command natspool is a worker pool across hosts on NATS JetStream
// (package natsjs of ipcchan), simulated on one machine: the parent runs
// an embedded JetStream node, starts N worker processes (this program,
// re-executed) that each run a node of their own clustered with it on
// loopback, submits jobs with natsjs.Pool.Do and prints each result and a
// summary.
//
//	go run . -workers 3 -jobs 200
//	go run . -jobs 100000     # long enough to press Ctrl-C
//
// Each worker is what would run on another host: its own node, joined to
// the cluster by a route, serving the pool with natsjs.Serve. The pool's
// channels keep 3 replicas (fewer with fewer nodes), so a worker that dies
// takes neither jobs nor results with it: its jobs go to another worker
// and each job is answered exactly once. Ctrl-C reaches the whole
// terminal's process group: the workers ignore it and stop when the parent
// closes their stdin; the parent stops submitting, reports what finished,
// stops the workers and removes its temporary directories.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipcchan/go/natsjs"
	"github.com/nats-io/nats-server/v2/server"
)

// Answer is a worker's result for a job.
type Answer struct {
	Square int
	Worker string
}

const (
	envWorker = "NATSPOOL_DEMO_WORKER" // this process is the worker of that name
	envRoute  = "NATSPOOL_DEMO_ROUTE"  // the cluster route of the parent's node
	envStore  = "NATSPOOL_DEMO_STORE"  // the worker node's store directory
	envR      = "NATSPOOL_DEMO_R"      // the pool channels' replicas
	pool      = "demo"
	cluster   = "natspool-demo"
)

func main() {
	workers := flag.Int("workers", 3, "worker processes, each with its own JetStream node")
	jobs := flag.Int("jobs", 200, "jobs to submit")
	flag.Parse()
	var err error
	if name, ok := os.LookupEnv(envWorker); ok {
		err = worker(name)
	} else {
		err = run(*workers, *jobs)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "natspool:", err)
		if errors.Is(err, context.Canceled) {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

// node returns the options of a cluster node on loopback with random
// ports, routed to route; route "" makes the first node, whose cluster port
// is one the kernel chose (a JetStream node must name a route to start: it
// names its own, which it ignores).
func node(name, store, route string) (*server.Options, error) {
	o := &server.Options{
		ServerName: name, Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: store,
		Cluster: server.ClusterOpts{Name: cluster, Host: "127.0.0.1", Port: -1},
	}
	if route == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		o.Cluster.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		route = "nats-route://127.0.0.1:" + strconv.Itoa(o.Cluster.Port)
	}
	o.Routes = server.RoutesFromStr(route)
	return o, nil
}

func run(nworkers, njobs int) error {
	if nworkers < 1 || njobs < 0 {
		return errors.New("-workers must be at least 1 and -jobs at least 0")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	tmp, err := os.MkdirTemp("", "natspool-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	o, err := node("parent", tmp+"/parent", "")
	if err != nil {
		return err
	}
	c, err := natsjs.Connect(ctx, natsjs.WithServerOptions(o))
	if err != nil {
		return err
	}
	defer c.Close()
	replicas := min(3, nworkers+1)
	var procs []*exec.Cmd
	var stdins []io.Closer
	defer func() { // stop the workers: they exit when their stdin closes
		for _, in := range stdins {
			in.Close()
		}
		for _, p := range procs {
			if err := p.Wait(); err != nil {
				fmt.Fprintf(os.Stderr, "natspool: worker %d: %v\n", p.Process.Pid, err)
			}
		}
	}()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for i := range nworkers {
		name := "worker" + strconv.Itoa(i+1)
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), envWorker+"="+name, envRoute+"=nats-route://"+c.Server().ClusterAddr().String(),
			envStore+"="+tmp+"/"+name, envR+"="+strconv.Itoa(replicas))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		procs, stdins = append(procs, cmd), append(stdins, in)
	}

	opts := []natsjs.PoolOption{natsjs.WithChannelConfig(natsjs.ChannelConfig{Replicas: replicas})}
	p, err := retry(ctx, func(ctx context.Context) (*natsjs.Pool[int, Answer], error) {
		return natsjs.NewPool[int, Answer](ctx, c, pool, opts...)
	})
	if err != nil {
		return fmt.Errorf("the cluster did not form: %w", err)
	}
	defer p.Close()

	start := time.Now()
	var done, failed atomic.Int64
	var mu sync.Mutex
	perWorker := map[string]int{}
	next := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for n := range next {
				a, err := p.Do(ctx, n)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						fmt.Printf("job %d: %v\n", n, err)
					}
					continue
				}
				done.Add(1)
				mu.Lock()
				perWorker[a.Worker]++
				mu.Unlock()
				fmt.Printf("job %d: %d² = %d (by %s)\n", n, n, a.Square, a.Worker)
			}
		})
	}
	for n := 1; n <= njobs && ctx.Err() == nil; n++ {
		select {
		case next <- n:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	fmt.Printf("%d of %d jobs answered in %v by %d workers (%v); %d failed\n",
		done.Load(), njobs, time.Since(start).Round(time.Millisecond), nworkers, perWorker, failed.Load())
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case failed.Load() > 0:
		return fmt.Errorf("%d jobs failed", failed.Load())
	}
	return nil
}

// retry calls f until it succeeds or ctx ends, each call bounded to 5 s: a
// cluster that is still forming answers nothing (no meta leader yet) or
// "insufficient resources" (too few nodes for the replicas).
func retry[T any](ctx context.Context, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := f(actx)
		acancel()
		if err == nil || ctx.Err() != nil {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// worker runs a node of its own, clustered with the parent's, and serves
// the pool until its stdin closes.
func worker(name string) error {
	signal.Ignore(os.Interrupt) // the parent decides when to stop
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	o, err := node(name, os.Getenv(envStore), os.Getenv(envRoute))
	if err != nil {
		return err
	}
	c, err := natsjs.Connect(ctx, natsjs.WithServerOptions(o))
	if err != nil {
		return err
	}
	defer c.Close()
	replicas, _ := strconv.Atoi(os.Getenv(envR))
	opts := []natsjs.PoolOption{natsjs.WithChannelConfig(natsjs.ChannelConfig{Replicas: replicas}), natsjs.WithConcurrency(4)}
	work := func(ctx context.Context, n int) (Answer, error) {
		return Answer{Square: n * n, Worker: name}, nil
	}
	for ctx.Err() == nil {
		// Serve fails while the cluster is forming: try again.
		if err := natsjs.Serve(ctx, c, pool, work, opts...); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}
