package natsjs_test

// The fault tests: a sender process and a receiver process move values
// through a channel replicated on a 3-node cluster (cluster_test.go) while
// server nodes and the receiver are SIGKILLed and restarted, or a node is
// stopped (SIGSTOP) for longer than an election; every value must arrive
// exactly once and in order (CheckExactlyOnce).

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/natsjs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Environment of a fault-test peer process.
const (
	envFaultRole    = "NATSJS_TEST_ROLE"    // "fault-send" or "fault-recv"
	envFaultURLs    = "NATSJS_TEST_URLS"    // the cluster's client URLs
	envFaultChannel = "NATSJS_TEST_CHANNEL" // the channel's name
	envFaultCount   = "NATSJS_TEST_COUNT"   // values to send
	envOrdered      = "NATSJS_TEST_ORDERED" // "1": try the URLs in their order (the first is n0)
	envHold         = "NATSJS_TEST_HOLD"    // a receiver holds this value: reports it and never returns from Decode
	envFaultN       = "NATSJS_FAULT_N"      // overrides faultValues
)

// faultAckWait is the receivers' AckWait in the fault tests: how long the
// value a killed receiver held waits before it comes again.
const faultAckWait = 2 * time.Second

func init() {
	role, ok := os.LookupEnv(envFaultRole)
	if !ok {
		return
	}
	var err error
	switch role {
	case "fault-send":
		err = faultSend()
	case "fault-recv":
		err = faultRecv()
	default:
		err = fmt.Errorf("unknown %s=%q", envFaultRole, role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "natsjs test %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// faultValues is how many values a fault test moves: 100,000, or 3,000
// under the race detector or -short (CI's go test -race; .ci/run runs the
// fault tests at full size without -race). NATSJS_FAULT_N overrides it.
func faultValues() int {
	if n, err := strconv.Atoi(os.Getenv(envFaultN)); err == nil && n > 0 {
		return n
	}
	if raceEnabled || testing.Short() {
		return 3000
	}
	return 100000
}

// seqCodec encodes the values of the fault tests (uint64, little endian).
// The receiver's copy reports every value it decodes on stdout before
// Decode returns: inside the transport's deliver, so before the value is
// acknowledged. A receiver SIGKILLed after the report but before the
// acknowledgement was recorded has its value come again; the checker
// allows exactly that for a killed receiver's last report.
type seqCodec struct{ report *reporter }

// hold is the value a receiver holds (NATSJS_TEST_HOLD), -1 for none.
var hold = func() int64 {
	if v, err := strconv.ParseInt(os.Getenv(envHold), 10, 64); err == nil {
		return v
	}
	return -1
}()

func (seqCodec) Name() string { return "natsjs-test-seq" }

func (seqCodec) Append(dst []byte, v uint64) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(dst, v), nil
}

func (c seqCodec) Decode(data []byte, v *uint64) error {
	if len(data) != 8 {
		return fmt.Errorf("%w: %d bytes, want 8", codec.ErrDecode, len(data))
	}
	*v = binary.LittleEndian.Uint64(data)
	if c.report != nil {
		c.report.delivered(*v)
		if int64(*v) == hold {
			select {} // taken, reported, never acknowledged: until killed
		}
	}
	return nil
}

// reporter writes a receiver's reports to stdout, unbuffered (a line
// written is the parent's even if this process is killed next).
type reporter struct {
	pending bool
	last    uint64
	buf     []byte
}

func (r *reporter) line(format string, args ...any) {
	r.buf = fmt.Appendf(r.buf[:0], format, args...)
	os.Stdout.Write(r.buf)
}

func (r *reporter) delivered(v uint64) {
	r.pending, r.last = true, v
	r.line("d %d\n", v)
}

// connectPeer connects a fault-test peer to the cluster.
func connectPeer(ctx context.Context) (*natsjs.Conn, error) {
	var o []nats.Option
	if os.Getenv(envOrdered) == "1" {
		o = append(o, nats.DontRandomize())
	}
	return natsjs.Connect(ctx, natsjs.WithURL(os.Getenv(envFaultURLs)), natsjs.WithNATSOptions(o...))
}

// faultChannel is the fault tests' channel: replicated on the three nodes,
// and bounded so that the sender is held (back-pressure) to at most 1,000
// values ahead of the receiver, and both are mid-stream at every fault.
var faultChannel = natsjs.ChannelConfig{Replicas: 3, MaxMsgs: 1000}

// faultSend sends 0..count-1 and closes; it prints what it saw: the
// reconnections and the sends that took long (retries inside Send).
func faultSend() error {
	ctx := context.Background()
	c, err := connectPeer(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	tx, err := natsjs.NewSender[uint64](ctx, c, os.Getenv(envFaultChannel), faultChannel, ipcchan.WithCodec[uint64](seqCodec{}))
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(os.Getenv(envFaultCount))
	var slow int
	var slowest time.Duration
	start := time.Now()
	for v := range n {
		t0 := time.Now()
		if err := tx.Send(ctx, uint64(v)); err != nil {
			return fmt.Errorf("send %d: %w", v, err)
		}
		if d := time.Since(t0); d > 100*time.Millisecond {
			slow++
			slowest = max(slowest, d)
		}
	}
	if err := tx.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	st := c.NATS().Stats()
	fmt.Printf("sent %d values in %v: %d reconnections, %d messages published (the values, the end marker, a few API requests, and every retry), %d sends over 100ms, the slowest %v\n",
		n, time.Since(start).Round(time.Millisecond), st.Reconnects, st.OutMsgs, slow, slowest.Round(time.Millisecond))
	return nil
}

// faultRecv receives until end of stream, reporting each value delivered
// ("d v", from Decode), each Recv error that followed a delivery ("nt v":
// that value was not taken and must come again), and at the end a summary
// ("stats ...") and "eof".
func faultRecv() error {
	ctx := context.Background()
	c, err := connectPeer(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	rep := &reporter{}
	rx, err := natsjs.NewReceiver[uint64](ctx, c, os.Getenv(envFaultChannel), faultChannel,
		natsjs.ReceiverConfig{AckWait: faultAckWait}, ipcchan.WithCodec[uint64](seqCodec{report: rep}))
	if err != nil {
		return err
	}
	defer rx.Close()
	var notTaken, other int
	var first error
	for {
		rep.pending = false
		_, err := rx.Recv(ctx)
		if err == io.EOF {
			rep.line("stats %d reconnections, %d Recv errors after a delivery (value not taken), %d without one (first: %v)\n",
				c.NATS().Stats().Reconnects, notTaken, other, first)
			rep.line("eof\n")
			return nil
		}
		if err != nil {
			if rep.pending {
				rep.line("nt %d\n", rep.last)
				notTaken++
			} else {
				other++
			}
			if first == nil {
				first = err
			}
			if notTaken+other > 1000 {
				return err
			}
		}
	}
}

// peerProc is a running fault-test peer.
type peerProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once stdout is read to its end and the process waited for
	err  error
}

// startPeer starts role with env; each line it prints goes to onLine (from
// one goroutine, in order). The process is killed when tb ends, and dies
// with the test process (Pdeathsig).
func startPeer(tb testing.TB, role string, env []string, onLine func(string)) *peerProc {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envFaultRole+"="+role), env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &peerProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			onLine(sc.Text())
		}
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(p.kill)
	return p
}

// kill SIGKILLs the peer and waits until everything it printed is read.
func (p *peerProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// wait waits for the peer to exit, or ctx to end.
func (p *peerProc) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		// Have it print where it is stuck (Go's SIGQUIT dump, on stderr).
		p.cmd.Process.Signal(syscall.SIGQUIT)
		<-p.done
		return fmt.Errorf("%w: (its goroutines on stderr above)", ctx.Err())
	}
}

// faultRun is one fault test's sender and (successive) receivers.
type faultRun struct {
	t      *testing.T
	env    []string
	n      int
	sender *peerProc
	sent   string // the sender's summary line
	stats  string // the last receiver's summary line
	mu     sync.Mutex
	cond   chan struct{} // closed and replaced on every report
	ds     []Delivery
	eof    bool
	recv   *peerProc
	recvs  int // receiver incarnations started
	killed []string
	start  time.Time
	urls   string
	// senderDone: the sender exited with success (waitDelivered's own).
	senderDone bool
}

// newFaultRun starts the sender and the first receiver on a fresh channel
// of cluster c. The peers connect to urls; with extra env.
func newFaultRun(t *testing.T, urls string, env ...string) *faultRun {
	r := &faultRun{t: t, n: faultValues(), cond: make(chan struct{}), start: time.Now(), urls: urls}
	r.env = append([]string{envFaultURLs + "=" + urls, envFaultChannel + "=" + strings.ReplaceAll(t.Name(), "/", "-"), envFaultCount + "=" + strconv.Itoa(r.n)}, env...)
	r.sender = startPeer(t, "fault-send", r.env, func(line string) { r.sent = line })
	r.startReceiver(nil)
	return r
}

func (r *faultRun) receiverName() string {
	if r.recvs == 1 {
		return "r1"
	}
	return "r1." + strconv.Itoa(r.recvs)
}

// startReceiver starts the next receiver incarnation, with extra env.
func (r *faultRun) startReceiver(env []string) {
	r.recvs++
	name := r.receiverName()
	r.recv = startPeer(r.t, "fault-recv", append(env, r.env...), func(line string) {
		r.mu.Lock()
		defer r.mu.Unlock()
		switch {
		case line == "eof":
			r.eof = true
		case strings.HasPrefix(line, "stats "):
			r.stats = line[len("stats "):]
		case strings.HasPrefix(line, "d "):
			v, _ := strconv.Atoi(line[2:])
			r.ds = append(r.ds, Delivery{Receiver: name, Value: v})
		case strings.HasPrefix(line, "nt "):
			v, _ := strconv.Atoi(line[3:])
			r.ds = append(r.ds, Delivery{Receiver: name, Value: v, NotTaken: true})
		default:
			r.t.Errorf("receiver %s printed %q", name, line)
		}
		close(r.cond)
		r.cond = make(chan struct{})
	})
}

// logf logs what a fault did, with the time since the run started.
func (r *faultRun) logf(format string, args ...any) {
	r.t.Helper()
	r.t.Logf("%6.1fs: %s", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// delivered returns the number of deliveries reported so far.
func (r *faultRun) delivered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ds)
}

// waitDelivered waits until k deliveries were reported in all (or the
// stream ended), or ctx ends.
func (r *faultRun) waitDelivered(ctx context.Context, k int) error {
	for {
		r.mu.Lock()
		got, eof, cond := len(r.ds), r.eof, r.cond
		r.mu.Unlock()
		if got >= k || eof {
			return nil
		}
		sent := r.sender.done
		if r.senderDone {
			sent = nil
		}
		select {
		case <-cond:
		case <-sent:
			if r.sender.err != nil {
				return fmt.Errorf("sender failed after %d deliveries: %v", got, r.sender.err)
			}
			r.senderDone = true
		case <-r.recv.done:
			return fmt.Errorf("receiver %s exited after %d deliveries: %v", r.receiverName(), got, r.recv.err)
		case <-ctx.Done():
			return fmt.Errorf("%d deliveries of %d wanted: %w", got, k, ctx.Err())
		}
	}
}

// waitValue waits until value v was delivered (reported) at least once,
// or ctx ends.
func (r *faultRun) waitValue(ctx context.Context, v int) error {
	for i := 0; ; {
		r.mu.Lock()
		ds, cond := r.ds[i:], r.cond
		r.mu.Unlock()
		for _, d := range ds {
			if d.Value == v {
				return nil
			}
		}
		i += len(ds)
		select {
		case <-cond:
		case <-r.recv.done:
			return fmt.Errorf("receiver %s exited before value %d: %v", r.receiverName(), v, r.recv.err)
		case <-ctx.Done():
			return fmt.Errorf("value %d never delivered: %w", v, ctx.Err())
		}
	}
}

// timesDelivered returns how many times v was delivered.
func (r *faultRun) timesDelivered(v int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := 0
	for _, d := range r.ds {
		if d.Value == v {
			k++
		}
	}
	return k
}

// killReceiver SIGKILLs the receiver and starts another, with env.
func (r *faultRun) killReceiver(env ...string) {
	name := r.receiverName()
	r.recv.kill()
	r.killed = append(r.killed, name)
	r.logf("receiver %s SIGKILLed after %d deliveries in all", name, r.delivered())
	r.startReceiver(env)
}

// finish waits for the sender and the receiver to end and checks that every
// value came exactly once, in order.
func (r *faultRun) finish(ctx context.Context) {
	t := r.t
	if err := r.sender.wait(ctx); err != nil {
		r.dumpState()
		t.Fatalf("sender: %v", err)
	}
	if err := r.recv.wait(ctx); err != nil {
		r.dumpState()
		t.Fatalf("receiver %s: %v (%d deliveries)", r.receiverName(), err, r.delivered())
	}
	t.Logf("sender: %s", r.sent)
	t.Logf("last receiver: %s", r.stats)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.eof {
		t.Fatalf("the last receiver exited without reporting the end of stream")
	}
	t.Logf("%d deliveries of %d values to %d receiver processes", len(r.ds), r.n, r.recvs)
	if err := CheckExactlyOnce(r.ds, r.n, r.killed, true); err != nil {
		r.mu.Unlock()
		r.dumpState()
		r.mu.Lock()
		t.Fatal(err)
	}
}

// dumpState logs the channel's stream and consumer as the cluster sees
// them, for a failure's diagnosis.
func (r *faultRun) dumpState() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := nats.Connect(r.urls)
	if err != nil {
		r.t.Logf("state: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	s, err := js.Stream(ctx, "IPCCHAN_"+strings.ReplaceAll(r.t.Name(), "/", "-"))
	if err != nil {
		r.t.Logf("state: stream: %v", err)
		return
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(">"))
	if err != nil {
		r.t.Logf("state: stream: %v", err)
		return
	}
	r.t.Logf("state: stream %+v, subjects %v, cluster %+v", info.State, info.State.Subjects, clusterOf(info))
	cons := s.ListConsumers(ctx)
	for ci := range cons.Info() {
		r.t.Logf("state: consumer %s: delivered %+v, ack floor %+v, pending %d, ack pending %d, redelivered %d, waiting %d, cluster %+v",
			ci.Name, ci.Delivered, ci.AckFloor, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting, ci.Cluster)
	}
	if err := cons.Err(); err != nil {
		r.t.Logf("state: consumers: %v", err)
	}
}

// faultContext bounds a fault test: 12 minutes, or up to 30 s before the
// test binary's -timeout, so that a stuck peer is dumped (SIGQUIT) and the
// test fails with what it saw rather than the binary panicking.
func faultContext(t *testing.T) context.Context {
	deadline := time.Now().Add(12 * time.Minute)
	if d, ok := t.Deadline(); ok && d.Add(-30*time.Second).Before(deadline) {
		deadline = d.Add(-30 * time.Second)
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	t.Cleanup(cancel)
	return ctx
}

// TestFaultReceiverKilled: the receiver process is SIGKILLed four times
// mid-stream and restarted: twice wherever it is (after a fifth and three
// fifths of the values), twice while it holds a value it took and has not
// acknowledged (the second and the fourth fifth: it never returns from
// Decode), which must come again to the next receiver. Every value arrives
// exactly once, in order.
func TestFaultReceiverKilled(t *testing.T) {
	c := startCluster(t, 3)
	ctx := faultContext(t)
	r := newFaultRun(t, c.URLs())
	var held []int
	for k := 1; k <= 4; k++ {
		var next []string
		if k%2 == 1 {
			if err := r.waitDelivered(ctx, r.n*k/5); err != nil {
				t.Fatal(err)
			}
			// The next receiver holds the value at the next fifth.
			held = append(held, r.n*(k+1)/5)
			next = []string{envHold + "=" + strconv.Itoa(held[len(held)-1])}
		} else {
			if err := r.waitValue(ctx, held[len(held)-1]); err != nil {
				t.Fatal(err)
			}
		}
		r.killReceiver(next...)
	}
	r.finish(ctx)
	for _, v := range held {
		if k := r.timesDelivered(v); k != 2 {
			t.Errorf("value %d, held unacknowledged by a killed receiver, delivered %d times, want 2", v, k)
		}
	}
}

// TestFaultNodeKilled: a server node is SIGKILLed and restarted on the same
// ports and store four times mid-stream: the stream's leader; a follower;
// n0, the node both peers are connected to (their URL lists start with it,
// not randomized), whatever its role then, so that the peers lose their
// server; and the leader again. Each time the test waits for another leader and,
// after the restart, for every replica to be current. Every value arrives
// exactly once, in order.
func TestFaultNodeKilled(t *testing.T) {
	c := startCluster(t, 3)
	ctx := faultContext(t)
	r := newFaultRun(t, c.URLs(), envOrdered+"=1")
	_, js := c.connect(c.URLs())
	stream := "IPCCHAN_" + strings.ReplaceAll(t.Name(), "/", "-")
	for k, kill := range []string{"leader", "follower", "n0", "leader"} {
		if err := r.waitDelivered(ctx, r.n*(k+1)/5); err != nil {
			t.Fatal(err)
		}
		was, err := c.streamLeader(ctx, js, stream)
		if err != nil {
			t.Fatal(err)
		}
		victim := was
		switch kill {
		case "follower":
			victim = (was + 1) % len(c.nodes)
		case "n0":
			victim = 0
		}
		at := r.delivered()
		t0 := time.Now()
		c.kill(victim)
		now := was
		for now == victim {
			if now, err = c.streamLeader(ctx, js, stream); err != nil {
				t.Fatal(err)
			}
			if now == victim {
				retryPause(ctx)
			}
		}
		elected := time.Since(t0)
		c.start(victim)
		if err := c.waitCurrent(ctx, js, stream); err != nil {
			t.Fatal(err)
		}
		role := "a follower"
		if victim == was {
			role = "the stream leader"
		}
		if victim == 0 {
			role += ", the peers' server"
		}
		r.logf("node %s (%s) SIGKILLed after %d deliveries; leader now %s (seen after %v); restarted and all replicas current after %v, %d deliveries in all",
			c.nodes[victim].spec.Name, role, at, c.nodes[now].spec.Name, elected.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), r.delivered())
	}
	r.finish(ctx)
}

// TestFaultNodeStopped is the partition that loopback can make honestly: a
// node stops answering (SIGSTOP) with its connections open, as a node cut
// off by the network looks to its peers and clients, for longer than a
// Raft election, and then comes back (SIGCONT). The stopped node is the
// stream's leader and the node both peers are connected to (their URL
// lists start with it, not randomized). The two others elect a leader,
// the peers find their server silent by its unanswered pings (every 250 ms
// here, WithNATSOptions: the two-minute default would leave them waiting
// four minutes) and reconnect to another, values keep flowing while the
// node is stopped, and when it resumes it learns it is no longer leader
// and catches up. Every value arrives exactly once, in order. (The test
// opens the channel first, with a Receiver it closes, to learn the
// stream's leader before the peers start.)
func TestFaultNodeStopped(t *testing.T) {
	c := startCluster(t, 3)
	ctx := faultContext(t)
	name := strings.ReplaceAll(t.Name(), "/", "-")
	stream := "IPCCHAN_" + name
	conn, err := natsjs.Connect(ctx, natsjs.WithURL(c.URLs()))
	if err != nil {
		t.Fatal(err)
	}
	rx, err := natsjs.NewReceiver[uint64](ctx, conn, name, faultChannel, natsjs.ReceiverConfig{AckWait: faultAckWait}, ipcchan.WithCodec[uint64](seqCodec{}))
	if err != nil {
		t.Fatal(err)
	}
	rx.Close()
	victim, err := c.streamLeader(ctx, conn.JetStream(), stream)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	urls := []string{c.URL(victim)}
	var others []string
	for i := range c.nodes {
		if i != victim {
			others = append(others, c.URL(i))
		}
	}
	r := newFaultRun(t, strings.Join(append(urls, others...), ","), envOrdered+"=1")
	_, js := c.connect(strings.Join(others, ",")) // the observer never waits on the stopped node
	if err := r.waitDelivered(ctx, r.n/5); err != nil {
		t.Fatal(err)
	}
	at := r.delivered()
	t0 := time.Now()
	c.signal(victim, syscall.SIGSTOP)
	leader := victim
	for leader == victim {
		if leader, err = c.streamLeader(ctx, js, stream); err != nil {
			t.Fatal(err)
		}
	}
	elected := time.Since(t0)
	// Progress while the node is stopped: the peers left it.
	if err := r.waitDelivered(ctx, at+r.n/5); err != nil {
		t.Fatal(err)
	}
	moved := time.Since(t0)
	c.signal(victim, syscall.SIGCONT)
	if err := c.waitCurrent(ctx, js, stream); err != nil {
		t.Fatal(err)
	}
	r.logf("node %s (stream leader, both peers' server) SIGSTOPped after %d deliveries; %s elected (seen after %v); %d more values delivered %v after the stop; SIGCONT: all replicas current again after %v, %d deliveries in all",
		c.nodes[victim].spec.Name, at, c.nodes[leader].spec.Name, elected.Round(time.Millisecond), r.n/5, moved.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond), r.delivered())
	r.finish(ctx)
}
