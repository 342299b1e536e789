package endpoints_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// These tests talk to testdata/classic.c, IPC peers written the textbook
// way, unchanged, with the Go side built only from the public API.

// classic starts testdata/classic.c with args and returns the command and
// a reader of its output, waiting for "ready" if ready is set.
func classic(t *testing.T, ctx context.Context, ready bool, args ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.CommandContext(ctx, cPeer(t, "classic"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	if ready && (!sc.Scan() || sc.Text() != "ready") {
		cmd.Wait()
		t.Fatalf("%s did not get ready", args[0])
	}
	return cmd, sc
}

// classicOutput runs testdata/classic.c to its end and returns its lines.
func classicOutput(t *testing.T, ctx context.Context, args ...string) []string {
	t.Helper()
	cmd := exec.CommandContext(ctx, cPeer(t, "classic"), args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("classic %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// text128 is the codec and framing for the C side's char buf[128] records.
var text128 = []ipcchan.Option{ipcchan.WithFraming(codec.FixedRecords(128)), ipcchan.WithCodec(codec.CText(128))}

// A FIFO between a C writer of fixed 128-byte buffers and a Go receiver,
// then a Go sender and a C reader.
func TestClassicFIFO(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "fifo")
	if err := endpoints.CreateFIFO(path); err != nil {
		t.Fatal(err)
	}
	const n = 500
	cmd, _ := classic(t, ctx, false, "fifo-write", path, fmt.Sprint(n))
	rx, err := endpoints.OpenFIFOReceiver[string](ctx, path, text128...)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for v, err := range rx.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("record %d", i); v != want {
			t.Fatalf("record %d = %q, want %q", i, v, want)
		}
		i++
	}
	rx.Close()
	if err := cmd.Wait(); err != nil || i != n {
		t.Fatalf("C writer: %v; %d records received, want %d", err, i, n)
	}

	cmd, out := classic(t, ctx, false, "fifo-read", path)
	tx, err := endpoints.OpenFIFOSender[string](ctx, path, text128...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := tx.Send(ctx, fmt.Sprintf("from Go %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !out.Scan() || out.Text() != fmt.Sprintf("from Go %d", i) {
			t.Fatalf("C reader line %d: %q", i, out.Text())
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("C reader: %v", err)
	}
}

// cMessage is the C side's struct { long mtype; char text[64]; } without
// its mtype, which the queue carries as the message type.
type cMessage struct {
	Text string `c:"char[64]"`
}

// A SysV queue the C program created, found by ftok: Go receivers select
// by message type; a Go sender's types are selected by a C msgrcv.
func TestClassicSysVQueue(t *testing.T) {
	ctx := testCtx(t)
	path := t.TempDir()
	classicOutput(t, ctx, "sysv-send", path) // creates the queue
	key, err := endpoints.Ftok(path, 'Q')
	if err != nil {
		t.Fatal(err)
	}
	q, err := endpoints.OpenSysVQueue(key)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Remove()
	c, err := codec.CStruct[cMessage]()
	if err != nil {
		t.Fatal(err)
	}
	opts := []ipcchan.Option{ipcchan.WithCodec(c), ipcchan.WithForeignPeer()}
	cancels, err := endpoints.SysVReceiver[cMessage](q, endpoints.MsgSelect{Type: 2}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cancels.Close()
	jobs, err := endpoints.SysVReceiver[cMessage](q, endpoints.MsgSelect{Type: 1}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer jobs.Close()
	for _, want := range []string{"cancel 1", "cancel 3", "cancel 5"} {
		if v, typ, err := cancels.RecvTag(ctx); err != nil || v.Text != want || typ != 2 {
			t.Fatalf("type 2: %q (type %d), %v; want %q", v.Text, typ, err, want)
		}
	}
	for _, want := range []string{"job 0", "job 2", "job 4"} {
		if v, typ, err := jobs.RecvTag(ctx); err != nil || v.Text != want || typ != 1 {
			t.Fatalf("type 1: %q (type %d), %v; want %q", v.Text, typ, err, want)
		}
	}

	tx, err := endpoints.SysVSender[cMessage](q, opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if err := tx.SendTag(ctx, uint32(3+i%2), cMessage{Text: fmt.Sprintf("go %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	got := classicOutput(t, ctx, "sysv-recv", path, "4", "2")
	if want := []string{"4 go 1", "4 go 3"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("C msgrcv of type 4: %q, want %q", got, want)
	}
	if st, err := q.Stats(); err != nil || st.Messages != 2 {
		t.Fatalf("left on the queue: %+v, %v; want the 2 messages of type 3 and no end-of-stream marker", st, err)
	}
}

// A POSIX queue the C program created with its own attributes: full
// 8192-byte zero-padded buffers come out highest priority first, and a Go
// sender's messages reach a C mq_receive with their priorities.
func TestClassicPosixMQ(t *testing.T) {
	ctx := testCtx(t)
	name := mqTestName(t)
	classicOutput(t, ctx, "mq-send", name)
	rx, err := endpoints.OpenMQReceiver[string](name, ipcchan.WithCodec(codec.CText(8192)), ipcchan.WithForeignPeer())
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	// Priorities i*3%5 for i = 0..5: 0 3 1 4 2 0.
	want := []string{"4 msg 3", "3 msg 1", "2 msg 4", "1 msg 2", "0 msg 0", "0 msg 5"}
	for _, w := range want {
		v, prio, err := rx.RecvTag(ctx)
		if err != nil || fmt.Sprintf("%d %s", prio, v) != w {
			t.Fatalf("got %d %q, %v; want %s", prio, v, err, w)
		}
	}
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("after the six: %v, want ErrWouldBlock", err)
	}

	tx, err := endpoints.OpenMQSender[string](name, ipcchan.WithCodec(codec.CText(100)), ipcchan.WithForeignPeer())
	if err != nil {
		t.Fatal(err)
	}
	for i, prio := range []uint32{1, 7, 3} {
		if err := tx.SendTag(ctx, prio, fmt.Sprintf("go %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	got := classicOutput(t, ctx, "mq-recv", name, "3")
	if want := []string{"7 go 1 (100 bytes)", "3 go 2 (100 bytes)", "1 go 0 (100 bytes)"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("C mq_receive: %q, want %q", got, want)
	}
	if st, err := endpoints.StatMQ(name); err != nil || st.Messages != 0 {
		t.Fatalf("left on the queue: %+v, %v; want nothing (no end-of-stream marker)", st, err)
	}
}

// A C Unix stream server of fixed 128-byte records, and a C Unix datagram
// server of 128-byte datagrams, each answering upper-cased.
func TestClassicUnixSockets(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	spath := filepath.Join(dir, "stream.sock")
	cmd, _ := classic(t, ctx, true, "stream-echo", spath)
	conn, err := endpoints.Dial[string, string](ctx, "unix", spath, text128...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := conn.Send(ctx, fmt.Sprintf("hello %d", i)); err != nil {
			t.Fatal(err)
		}
		if v, err := conn.Recv(ctx); err != nil || v != fmt.Sprintf("HELLO %d", i) {
			t.Fatalf("reply %d: %q, %v", i, v, err)
		}
	}
	conn.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("C stream server: %v", err)
	}

	cpath, gopath := filepath.Join(dir, "c.dgram"), filepath.Join(dir, "go.dgram")
	raw := []ipcchan.Option{ipcchan.WithCodec(codec.CText(128)), ipcchan.WithForeignPeer()}
	rx, _, err := endpoints.ListenPacket[string](ctx, "unixgram", gopath, raw...)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	cmd, _ = classic(t, ctx, true, "dgram-echo", cpath, gopath)
	tx, err := endpoints.DialPacket[string](ctx, "unixgram", cpath, raw...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if err := tx.Send(ctx, fmt.Sprintf("datagram %d", i)); err != nil {
			t.Fatal(err)
		}
		if v, err := rx.Recv(ctx); err != nil || v != fmt.Sprintf("DATAGRAM %d", i) {
			t.Fatalf("reply %d: %q, %v", i, v, err)
		}
	}
	if err := tx.Send(ctx, "quit"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil { // sends no marker: the C side would take it for a message
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("C datagram server: %v", err)
	}
}

// cShared is the C side's struct { int pid; int counter; }.
type cShared struct {
	PID     int32
	Counter int32
}

// A SysV segment created by a C program and found by ftok: three C
// processes and two Go goroutines add to the counter at once, atomically;
// nothing is lost.
func TestClassicSharedSegment(t *testing.T) {
	ctx := testCtx(t)
	path := t.TempDir()
	classicOutput(t, ctx, "shm-count", path, "0") // creates the segment
	key, err := endpoints.Ftok(path, 'S')
	if err != nil {
		t.Fatal(err)
	}
	m, err := endpoints.OpenSysVShm(key)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	defer m.Remove()
	if layout, err := codec.CStructLayout[cShared](); err != nil || m.Len() < layout.Size {
		t.Fatalf("layout %+v for a %d-byte segment: %v", layout, m.Len(), err)
	}
	v, err := endpoints.ViewOf[cShared](m, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var cmds []*exec.Cmd
	for range 3 {
		cmd, _ := classic(t, ctx, false, "shm-count", path, fmt.Sprint(n))
		cmds = append(cmds, cmd)
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range n {
				v.Update(func(p *cShared) { atomic.AddInt32(&p.Counter, 1) })
			}
		})
	}
	wg.Wait()
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("C counter: %v", err)
		}
	}
	got, err := v.Load()
	if err != nil || got.Counter != 5*n || got.PID == 0 {
		t.Fatalf("shared struct %+v, %v; want counter %d and a C pid", got, err, 5*n)
	}
}
