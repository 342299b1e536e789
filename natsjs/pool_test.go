package natsjs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/natsjs"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// The environment of a pool worker process the tests start (this test
// binary, re-executed: see init).
const (
	envPoolWorker = "NATSPOOL_WORKER" // the pool's name
	envPoolURL    = "NATSPOOL_URL"    // connect to this server, or:
	envPoolRoute  = "NATSPOOL_ROUTE"  // run a node of its own, routed to this cluster URL
	envPoolStore  = "NATSPOOL_STORE"  // that node's store directory
	envPoolNode   = "NATSPOOL_NODE"   // that node's server name
	envPoolCrash  = "NATSPOOL_CRASH"  // "work:<k>" or "answered:<k>": SIGKILL itself in its k-th job, there
	envPoolConc   = "NATSPOOL_CONC"   // WithConcurrency
	envPoolR      = "NATSPOOL_R"      // the channels' replicas
	envPoolToken  = "NATSPOOL_TOKEN"  // the token of the server at NATSPOOL_URL
)

const poolClusterName = "natspool-test"

// init runs this process as a pool worker if a test started it as one:
// before TestMain, so that the package's TestMain (natscore's) need not
// know of it.
func init() {
	pool, ok := os.LookupEnv(envPoolWorker)
	if !ok {
		return
	}
	if err := poolWorkerMain(pool); err != nil {
		fmt.Fprintln(os.Stderr, "pool worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// square is the work the test workers do: n², or an error for multiples of
// 97.
func square(n int) (int, error) {
	if n%97 == 0 {
		return 0, fmt.Errorf("%d is a multiple of 97", n)
	}
	return n * n, nil
}

func poolWorkerMain(pool string) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // the parent closes stdin to stop the worker
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	var c *natsjs.Conn
	var err error
	if route := os.Getenv(envPoolRoute); route != "" {
		c, err = natsjs.Connect(ctx, natsjs.WithServerOptions(clusterNode(nil, os.Getenv(envPoolNode), os.Getenv(envPoolStore), route)))
	} else {
		c, err = natsjs.Connect(ctx, natsjs.WithURL(os.Getenv(envPoolURL)), natsjs.WithNATSOptions(nats.Token(os.Getenv(envPoolToken))))
	}
	if err != nil {
		return err
	}
	defer c.Close()
	if c.Server() != nil {
		c.Server().ConfigureLogger()
	}

	where, k := "", 0
	if v := os.Getenv(envPoolCrash); v != "" {
		w, n, _ := strings.Cut(v, ":")
		where, k = w, atoi(n)
	}
	var jobs atomic.Int64
	die := func() {
		os.Stdout.WriteString("crash\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
	if where == "answered" {
		var answered atomic.Int64
		natsjs.SetAfterResultHook(func(string) {
			if answered.Add(1) == int64(k) {
				die()
			}
		})
	}
	work := func(ctx context.Context, n int) (int, error) {
		if where == "work" && jobs.Add(1) == int64(k) {
			die()
		}
		return square(n)
	}
	opts := append(poolOpts(atoi(os.Getenv(envPoolConc))), natsjs.WithChannelConfig(natsjs.ChannelConfig{Replicas: atoi(os.Getenv(envPoolR))}))
	for {
		err := natsjs.Serve(ctx, c, pool, work, opts...)
		if err == nil || os.Getenv(envPoolRoute) == "" {
			return err
		}
		// The cluster is still forming (no meta leader, too few nodes
		// for the replicas): it signals nothing, so poll.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// poolOpts are the options every end of the tests' pools takes: a short
// AckWait, so that a killed worker's job goes to another soon.
func poolOpts(conc int) []natsjs.PoolOption {
	return []natsjs.PoolOption{natsjs.WithAckWait(time.Second), natsjs.WithConcurrency(max(conc, 1))}
}

// soloNode returns the options of a single node on loopback.
func soloNode(name, store string) *server.Options {
	return &server.Options{
		ServerName: name, Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: os.Getenv("NATSPOOL_LOG") == "",
		JetStream: true, StoreDir: store,
	}
}

// clusterNode returns the options of a node of the tests' cluster on
// loopback, routed to route; route "" makes the seed, whose cluster port
// is taken from a listener the kernel chose and closed (a JetStream node
// must name a route to start, so the seed names its own, ignored).
func clusterNode(t testing.TB, name, store, route string) *server.Options {
	o := soloNode(name, store)
	if d := os.Getenv("NATSPOOL_LOGDIR"); d != "" {
		o.NoLog, o.LogFile = false, d+"/"+name+".log"
		o.Debug = os.Getenv("NATSPOOL_DEBUG") != ""
	}
	o.Cluster = server.ClusterOpts{Name: poolClusterName, Host: "127.0.0.1", Port: -1}
	if route == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.Cluster.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		route = fmt.Sprintf("nats-route://127.0.0.1:%d", o.Cluster.Port)
	}
	o.Routes = server.RoutesFromStr(route)
	return o
}

// poolWorker is a worker process: a child of child_test.go's runChild,
// whose stdout it does not read.
type poolWorker struct{ *proc }

func startPoolWorker(t *testing.T, env ...string) *poolWorker {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return &poolWorker{runChild(t, "pool worker", cmd)}
}

// stop closes the worker's stdin (Serve returns) and waits for it to exit.
func (w *poolWorker) stop(t *testing.T) {
	t.Helper()
	w.stdin.Close()
	select {
	case <-w.done:
		if w.err != nil {
			t.Errorf("worker %d: %v", w.cmd.Process.Pid, w.err)
		}
	case <-time.After(30 * time.Second):
		w.kill()
		<-w.done
		t.Errorf("worker %d did not stop within 30 s of its stdin closing", w.cmd.Process.Pid)
	}
}

// runJobs submits jobs 1..n through p, conc at a time, and checks every
// answer; it returns once all are answered. answered counts them as they
// come.
func runJobs(t *testing.T, ctx context.Context, p *natsjs.Pool[int, int], n, conc int, answered *progress) {
	t.Helper()
	var wg sync.WaitGroup
	jobs := make(chan int)
	var failed atomic.Int64
	for range conc {
		wg.Go(func() {
			for j := range jobs {
				got, err := p.Do(ctx, j)
				answered.add()
				want, werr := square(j)
				var je *natsjs.JobError
				switch {
				case werr != nil && (!errors.As(err, &je) || je.Msg != werr.Error()):
					t.Errorf("job %d: got %v, %v; want a *JobError %q", j, got, err, werr)
				case werr == nil && (err != nil || got != want):
					t.Errorf("job %d: got %v, %v; want %d", j, got, err, want)
				default:
					continue
				}
				if failed.Add(1) > 10 {
					t.FailNow()
				}
			}
		})
	}
	for j := 1; j <= n && ctx.Err() == nil; j++ {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
}

// progress counts answers, and closes reached when they reach at.
type progress struct {
	n       atomic.Int64
	at      int64
	reached chan struct{}
}

func newProgress(at int64) *progress { return &progress{at: at, reached: make(chan struct{})} }

func (p *progress) add() {
	if p.n.Add(1) == p.at {
		close(p.reached)
	}
}

// resultsStored returns how many results p's results stream has ever
// stored: one per job when none was answered twice.
func resultsStored(t *testing.T, ctx context.Context, c *natsjs.Conn, p *natsjs.Pool[int, int]) uint64 {
	t.Helper()
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.JetStream().Stream(actx, "IPCCHAN_"+natsjs.ResultsChannel(p))
		cancel()
		if err == nil {
			return st.CachedInfo().State.LastSeq
		}
		if ctx.Err() != nil {
			t.Fatalf("the results stream's info: %v", err)
		}
		// A cluster that lost a node answers "temporarily unavailable"
		// until it has settled: it signals nothing else, so poll.
		time.Sleep(100 * time.Millisecond)
	}
}

func poolCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestPoolInProcess(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := poolCtx(t, 2*time.Minute)
	c, err := natsjs.Connect(ctx, natsjs.WithServerOptions(soloNode("solo", t.TempDir())))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := natsjs.Serve(sctx, c, "sq", func(_ context.Context, n int) (int, error) { return square(n) }, poolOpts(4)...); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	defer func() { stop(); wg.Wait() }()

	p, err := natsjs.NewPool[int, int](ctx, c, "sq", poolOpts(1)...)
	if err != nil {
		t.Fatal(err)
	}
	runJobs(t, ctx, p, 300, 16, newProgress(0))
	if got := resultsStored(t, ctx, c, p); got != 300 {
		t.Errorf("the results stream stored %d results for 300 jobs", got)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.Do(cctx, 3); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with a cancelled ctx: %v, want context.Canceled", err)
	}
	// A Serve or Pool with another result type is refused.
	if err := natsjs.Serve(ctx, c, "sq", func(context.Context, int) (string, error) { return "", nil }); !errors.Is(err, ipcchan.ErrHandshake) {
		t.Errorf("Serve[int, string] on a pool of int results: %v, want ErrHandshake", err)
	}
	if _, err := natsjs.NewPool[string, int](ctx, c, "sq"); !errors.Is(err, ipcchan.ErrHandshake) {
		t.Errorf("NewPool[string, int] on a pool of int jobs: %v, want ErrHandshake", err)
	}
	if _, err := natsjs.NewPool[int, int](ctx, c, strings.Repeat("x", 34)); !errors.Is(err, ipcchan.ErrOption) {
		t.Errorf("a 34-character pool name: %v, want ErrOption", err)
	}

	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Do(ctx, 2); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Do after Close: %v, want os.ErrClosed", err)
	}
	lister := c.JetStream().StreamNames(ctx)
	for name := range lister.Name() {
		if strings.HasPrefix(name, "IPCCHAN_sq-results-") {
			t.Errorf("stream %s left after Close", name)
		}
	}
}

// TestPoolWorkerKilled kills worker processes again and again at random
// points (inside the work function, and in the window after a result is
// stored and before its job is acknowledged) while 600 jobs run: every job
// is answered once, with its value, and the results stream stores exactly
// one result per job.
func TestPoolWorkerKilled(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := poolCtx(t, 3*time.Minute)
	hub := soloNode("hub", t.TempDir())
	hub.Authorization = nuid.Next()
	c, err := natsjs.Connect(ctx, natsjs.WithServerOptions(hub))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p, err := natsjs.NewPool[int, int](ctx, c, "kill", poolOpts(1)...)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	const jobs, kills = 600, 16
	var crashes [2]atomic.Int64
	var wg sync.WaitGroup
	finish := make(chan struct{})
	for slot := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				env := []string{envPoolWorker + "=kill", envPoolURL + "=" + c.Server().ClientURL(), envPoolToken + "=" + hub.Authorization, envPoolConc + "=3"}
				if i < kills/2 {
					where := [...]string{"work", "answered"}[i%2]
					env = append(env, fmt.Sprintf("%s=%s:%d", envPoolCrash, where, 1+rand.IntN(30)))
				}
				w := startPoolWorker(t, env...)
				select {
				case <-w.done:
					crashes[slot].Add(1)
					continue
				case <-finish:
				}
				w.stop(t)
				return
			}
		})
	}
	runJobs(t, ctx, p, jobs, 32, newProgress(0))
	close(finish)
	wg.Wait()
	if got := resultsStored(t, ctx, c, p); got != jobs {
		t.Errorf("the results stream stored %d results for %d jobs: a job was answered twice", got, jobs)
	}
	t.Logf("%d and %d workers killed", crashes[0].Load(), crashes[1].Load())
	if crashes[0].Load()+crashes[1].Load() < kills/2 {
		t.Errorf("only %d workers were killed (the jobs ran out before the crash points)", crashes[0].Load()+crashes[1].Load())
	}
}

// TestPoolCluster runs three worker processes, each with its own JetStream
// node, clustered on loopback with the submitter's node (streams with 3
// replicas on the 4 nodes), and SIGKILLs one of them (and its node) a third
// of the way through 1,000 jobs: each is answered exactly once.
func TestPoolCluster(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := poolCtx(t, 3*time.Minute)
	c, err := natsjs.Connect(ctx, natsjs.WithServerOptions(clusterNode(t, "submitter", t.TempDir(), "")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Server().ConfigureLogger()
	route := fmt.Sprintf("nats-route://%s", c.Server().ClusterAddr())
	var workers []*poolWorker
	for i := range 3 {
		workers = append(workers, startPoolWorker(t, envPoolWorker+"=cl", envPoolRoute+"="+route,
			envPoolStore+"="+t.TempDir(), envPoolNode+"=worker"+strconv.Itoa(i), envPoolConc+"=4", envPoolR+"=3"))
	}
	opts := append(poolOpts(1), natsjs.WithChannelConfig(natsjs.ChannelConfig{Replicas: 3}))
	var p *natsjs.Pool[int, int]
	for { // until the cluster has formed and can place 3 replicas
		actx, cancel := context.WithTimeout(ctx, 5*time.Second) // a request no leader answers waits for its deadline
		p, err = natsjs.NewPool[int, int](actx, c, "cl", opts...)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond) // polling the cluster's formation: it signals nothing
	}
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	answered := newProgress(333)
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		select {
		case <-answered.reached:
		case <-ctx.Done():
		}
		workers[1].kill()
		<-workers[1].done
	}()
	runJobs(t, ctx, p, 1000, 32, answered)
	<-killed
	// Count the results and close the Pool before stopping the other
	// workers: each stops its node too, and a stream whose 3 replicas
	// were on 2 stopped nodes and the submitter's can elect no leader, so
	// it answers nothing ever again (nats-server needs a majority of the
	// replicas; the submitter's node alone is not one).
	if got := resultsStored(t, ctx, c, p); got != 1000 {
		t.Errorf("the results stream stored %d results for 1000 jobs", got)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	workers[0].stop(t)
	workers[2].stop(t)
}
