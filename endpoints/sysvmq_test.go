package endpoints_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// sysvQueues are the queues tests made, removed when the tests end (a SysV
// queue outlives every process that uses it).
var sysvQueues struct {
	sync.Mutex
	list []*endpoints.SysVQueue
}

func newTestQueue() (*endpoints.SysVQueue, error) {
	q, err := endpoints.CreateSysVQueue(endpoints.IPCPrivate)
	if err == nil {
		sysvQueues.Lock()
		sysvQueues.list = append(sysvQueues.list, q)
		journalQueue(q.ID())
		sysvQueues.Unlock()
	}
	return q, err
}

// The queue journal: a test process that is killed (a test timeout's
// panic, a kill) never reaches removeTestQueues, and its private queues
// would stay for good. Each process lists the queues it makes in a file of
// its own, an id a line; TestMain removes the queues of the runs whose
// process is gone, and removeTestQueues the process's file.
var queueJournal = filepath.Join(os.TempDir(), fmt.Sprintf("ipcchan-test-sysvmq-%d", os.Getuid()))

// journalQueue adds queue id to this process's journal; sysvQueues is
// held.
func journalQueue(id int) {
	if os.MkdirAll(queueJournal, 0o700) != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(queueJournal, strconv.Itoa(os.Getpid())), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "%d\n", id)
	f.Close()
}

// reapKilledRuns removes the queues that test processes which no longer run
// journaled, each only if it is still private and this user's (an id
// comes back only after its slot's sequence number wraps).
func reapKilledRuns() {
	files, _ := os.ReadDir(queueJournal)
	for _, file := range files {
		pid, err := strconv.Atoi(file.Name())
		if err != nil || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		path := filepath.Join(queueJournal, file.Name())
		data, _ := os.ReadFile(path)
		for _, line := range strings.Split(string(data), "\n") {
			id, err := strconv.Atoi(line)
			if err != nil {
				continue
			}
			var ds sys.MsqidDs
			if sys.MsgctlStat(id, &ds) == nil && ds.Perm.Key == 0 && int(ds.Perm.Uid) == os.Getuid() {
				sys.MsgctlRmid(id)
			}
		}
		os.Remove(path)
	}
}

// removeTestQueues removes every queue the tests made; TestMain calls it.
func removeTestQueues() {
	sysvQueues.Lock()
	defer sysvQueues.Unlock()
	for _, q := range sysvQueues.list {
		q.Remove()
	}
	sysvQueues.list = nil
	os.Remove(filepath.Join(queueJournal, strconv.Itoa(os.Getpid())))
}

var sysvMQHarness = &ipcchantest.Harness{
	Name:          "sysvmq",
	CountsSenders: true,
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		q, err := newTestQueue()
		if err != nil {
			return nil, nil, err
		}
		tx, err := endpoints.SysVSender[[]byte](q, senderSide(opts)...)
		if err != nil {
			return nil, nil, err
		}
		rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{}, receiverSide(opts)...)
		if err != nil {
			tx.Close()
			return nil, nil, err
		}
		return tx, rx, nil
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   8192,
	MaxShared:    8192,
	WatchPeer:    true, // a queue has no kernel end of stream
	Lookalikes:   queueLookalikes,
}

func TestSysVMQConformance(t *testing.T) { ipcchantest.Run(t, sysvMQHarness) }

type qjob struct{ ID, Cost int32 }
type cancelJob struct{ ID int32 }

// One queue carries two element types, one per message type, and a Select
// waits on both; each type keeps its own order.
func TestSysVMQTypedSelect(t *testing.T) {
	q, err := newTestQueue()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	jobsTx, _ := endpoints.SysVSender[qjob](q, ipcchan.WithTag(1))
	cancelsTx, _ := endpoints.SysVSender[cancelJob](q, ipcchan.WithTag(2))
	jobs, _ := endpoints.SysVReceiver[qjob](q, endpoints.MsgSelect{Type: 1})
	cancels, _ := endpoints.SysVReceiver[cancelJob](q, endpoints.MsgSelect{Type: 2})
	defer jobs.Close()
	defer cancels.Close()
	for i := range int32(5) {
		jobsTx.Send(ctx, qjob{ID: i, Cost: 10 * i})
		if i%2 == 0 {
			cancelsTx.Send(ctx, cancelJob{ID: i})
		}
	}
	jobsTx.Close()
	cancelsTx.Close()
	var gotJobs, gotCancels []int32
	jobsCase, cancelsCase := jobs, cancels
	for jobsCase != nil || cancelsCase != nil {
		i, err := ipcchan.Select(ctx,
			ipcchan.OnRecv(jobsCase, func(j qjob) { gotJobs = append(gotJobs, j.ID) }),
			ipcchan.OnRecv(cancelsCase, func(c cancelJob) { gotCancels = append(gotCancels, c.ID) }))
		switch {
		case err == io.EOF && i == 0: // each receiver ends at its own type's marker
			jobsCase = nil
		case err == io.EOF && i == 1:
			cancelsCase = nil
		case err != nil:
			t.Fatal(err)
		}
	}
	if len(gotJobs) != 5 || len(gotCancels) != 3 {
		t.Fatalf("got jobs %v and cancels %v", gotJobs, gotCancels)
	}
	for i, id := range gotJobs {
		if id != int32(i) {
			t.Fatalf("jobs out of order: %v", gotJobs)
		}
	}
	if gotCancels[0] != 0 || gotCancels[1] != 2 || gotCancels[2] != 4 {
		t.Fatalf("cancels: %v", gotCancels)
	}
}

// Type selection as msgrcv(2) defines it, peeking, stats and refusals.
func TestSysVMQSelectionAndStats(t *testing.T) {
	q, err := newTestQueue()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tx, _ := endpoints.SysVSender[string](q, ipcchan.WithLinger(10*time.Millisecond))
	defer tx.Close()
	for _, m := range []struct {
		typ uint32
		v   string
	}{{3, "c1"}, {1, "a1"}, {2, "b1"}, {3, "c2"}, {1, "a2"}} {
		if err := tx.SendTag(ctx, m.typ, m.v); err != nil {
			t.Fatal(err)
		}
	}
	st, err := q.Stats()
	if err != nil || st.Messages != 5 || st.LastSenderPID != os.Getpid() || st.Mode != 0o600 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	buf := make([]byte, 64)
	if typ, n, err := q.Peek(1, buf); err == nil {
		if typ != 1 || n < 2 {
			t.Fatalf("Peek(1) = type %d, %d bytes", typ, n)
		}
		if st2, _ := q.Stats(); st2.Messages != 5 {
			t.Fatal("Peek took a message off the queue")
		}
	} else if !errors.Is(err, unix.ENOSYS) {
		t.Fatalf("Peek: %v", err)
	}
	recv := func(sel endpoints.MsgSelect) (string, uint32) {
		t.Helper()
		rx, err := endpoints.SysVReceiver[string](q, sel)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		v, typ, err := rx.RecvTag(ctx)
		if err != nil {
			t.Fatalf("%+v: %v", sel, err)
		}
		return v, typ
	}
	checks := []struct {
		sel  endpoints.MsgSelect
		want string
		typ  uint32
	}{
		{endpoints.MsgSelect{Type: 1}, "a1", 1},               // exactly type 1
		{endpoints.MsgSelect{Type: -2}, "a2", 1},              // lowest type up to 2
		{endpoints.MsgSelect{Type: 3, Except: true}, "b1", 2}, // first not of type 3
		{endpoints.MsgSelect{}, "c1", 3},                      // first of any type
	}
	for _, c := range checks {
		if v, typ := recv(c.sel); v != c.want || typ != c.typ {
			t.Errorf("%+v: got %q type %d, want %q type %d", c.sel, v, typ, c.want, c.typ)
		}
	}
	if err := tx.SendTag(ctx, 0, "x"); !errors.Is(err, endpoints.ErrReservedTag) {
		t.Errorf("type 0: %v, want ErrReservedTag", err)
	}
	if err := tx.Send(ctx, string(make([]byte, 9000))); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Errorf("9000 bytes: %v, want ErrMessageTooLarge", err)
	}
}

// A queue removed under a blocked receiver ends the receive with
// ErrRemoved, promptly.
func TestSysVMQRemovedUnderReceiver(t *testing.T) {
	q, err := endpoints.CreateSysVQueue(endpoints.IPCPrivate)
	if err != nil {
		t.Fatal(err)
	}
	rx, _ := endpoints.SysVReceiver[int](q, endpoints.MsgSelect{})
	defer rx.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := rx.Recv(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	q.Remove()
	select {
	case err := <-errc:
		if !errors.Is(err, endpoints.ErrRemoved) {
			t.Fatalf("Recv on a removed queue = %v, want ErrRemoved", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv hangs on a removed queue")
	}
}

// Keys from Ftok, exclusive creation, opening by key, permissions.
func TestSysVMQKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	os.WriteFile(path, nil, 0o600)
	key, err := endpoints.Ftok(path, 'q')
	if err != nil {
		t.Fatal(err)
	}
	q, err := endpoints.CreateSysVQueue(key, ipcchan.WithPerm(0o640))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Remove()
	if _, err := endpoints.CreateSysVQueue(key); !errors.Is(err, os.ErrExist) {
		t.Fatalf("creating it again: %v, want os.ErrExist", err)
	}
	q2, err := endpoints.OpenSysVQueue(key)
	if err != nil || q2.ID() != q.ID() {
		t.Fatalf("OpenSysVQueue = %v, %v", q2, err)
	}
	if st, _ := q.Stats(); st.Mode != 0o640 {
		t.Fatalf("mode %#o, want 0640", st.Mode)
	}
	if _, err := endpoints.Ftok(filepath.Join(t.TempDir(), "missing"), 1); err == nil {
		t.Fatal("Ftok of a missing file succeeded")
	}
}

// SysVQueue.Send and Receive are msgsnd and msgrcv with the whole type:
// exact bytes (no end-of-stream marker or escape), waits that end with
// their context having done nothing, a message too long for the buffer
// left queued, refusals before sending.
func TestSysVQueueSendReceive(t *testing.T) {
	q, err := newTestQueue()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	buf := make([]byte, 8192)
	dctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, _, err = q.Receive(dctx, endpoints.MsgSelect{}, buf)
	cancel()
	if err != context.DeadlineExceeded {
		t.Fatalf("Receive on an empty queue past its deadline: %v", err)
	}

	// A C long: 64 bits, or 32 on 32-bit Linux.
	maxType, wide := int64(sys.MaxMtype), int64(1<<40)
	if sys.MtypeSize == 4 {
		wide = 1 << 20
	}
	for _, m := range []struct {
		typ  int64
		text string
	}{{5, queueMarker}, {maxType, queueEscape + "x"}, {6, "0123456789"}, {wide, ""}} {
		if err := q.Send(ctx, m.typ, []byte(m.text)); err != nil {
			t.Fatal(err)
		}
	}
	if typ, n, err := q.Receive(ctx, endpoints.MsgSelect{Type: 5}, buf); err != nil || typ != 5 || string(buf[:n]) != queueMarker {
		t.Fatalf("the marker's bytes: type %d, %q, %v", typ, buf[:n], err)
	}
	if typ, n, err := q.Receive(ctx, endpoints.MsgSelect{Type: 6, Except: true}, buf); err != nil || typ != maxType || string(buf[:n]) != queueEscape+"x" {
		t.Fatalf("type %d, the largest long: type %d, %q, %v", maxType, typ, buf[:n], err)
	}
	if _, _, err := q.Receive(ctx, endpoints.MsgSelect{Type: 6}, buf[:4]); !errors.Is(err, ipcchan.ErrFrameTooLarge) {
		t.Fatalf("10 bytes into 4: %v, want ErrFrameTooLarge", err)
	}
	if typ, n, err := q.Receive(ctx, endpoints.MsgSelect{Type: 6, Truncate: true}, buf[:4]); err != nil || typ != 6 || string(buf[:n]) != "0123" {
		t.Fatalf("the same, truncated: type %d, %q, %v (it should have stayed queued)", typ, buf[:n], err)
	}
	if typ, n, err := q.Receive(ctx, endpoints.MsgSelect{Type: -2 * wide}, buf); err != nil || typ != wide || n != 0 {
		t.Fatalf("lowest type up to %d: type %d, %d bytes, %v", 2*wide, typ, n, err)
	}
	if sys.MtypeSize == 4 {
		// Types a 32-bit long cannot hold are refused, not cut.
		if err := q.Send(ctx, 1<<31, nil); !errors.Is(err, endpoints.ErrMsgType) {
			t.Errorf("type 2^31 on 32-bit: %v, want ErrMsgType", err)
		}
		if _, _, err := q.Receive(ctx, endpoints.MsgSelect{Type: -(1 << 32)}, buf); !errors.Is(err, endpoints.ErrMsgType) {
			t.Errorf("selecting types up to 2^32 on 32-bit: %v, want ErrMsgType", err)
		}
	}

	for _, typ := range []int64{0, -1, math.MinInt64} {
		if err := q.Send(ctx, typ, nil); !errors.Is(err, endpoints.ErrReservedTag) {
			t.Errorf("type %d: %v, want ErrReservedTag", typ, err)
		}
	}
	if err := q.Send(ctx, 1, make([]byte, 1<<20)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Errorf("1 MiB: %v, want ErrMessageTooLarge", err)
	}

	// A full queue: a Send waits, and past its deadline has sent nothing.
	st, err := q.Stats()
	if err != nil {
		t.Fatal(err)
	}
	full := st.MaxBytes / len(buf)
	for range full {
		if err := q.Send(ctx, 2, buf); err != nil {
			t.Fatal(err)
		}
	}
	dctx, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
	err = q.Send(dctx, 2, buf)
	cancel()
	if err != context.DeadlineExceeded {
		t.Fatalf("Send to a full queue past its deadline: %v", err)
	}
	if st, err := q.Stats(); err != nil || st.Messages != full {
		t.Fatalf("after a cancelled Send: %+v, %v; want %d messages", st, err, full)
	}

	// Concurrent callers share nothing but the queue.
	var wg sync.WaitGroup
	for range full {
		wg.Go(func() {
			b := make([]byte, 8192)
			if _, n, err := q.Receive(ctx, endpoints.MsgSelect{}, b); err != nil || n != len(b) {
				t.Errorf("Receive: %d bytes, %v", n, err)
			}
		})
		wg.Go(func() {
			if err := q.Send(ctx, 3, []byte("x")); err != nil {
				t.Errorf("Send: %v", err)
			}
		})
	}
	wg.Wait()
	if st, err := q.Stats(); err != nil || st.Messages != full {
		t.Fatalf("after the concurrent calls: %+v, %v; want %d messages", st, err, full)
	}

	if err := q.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := q.Receive(ctx, endpoints.MsgSelect{}, buf); !errors.Is(err, endpoints.ErrRemoved) {
		t.Fatalf("Receive on a removed queue: %v, want ErrRemoved", err)
	}
}

// A typed Sender's end-of-stream marker carries its message type whole,
// the largest a tag holds included.
func TestSysVMQMarkerCarriesSenderType(t *testing.T) {
	q, err := newTestQueue()
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	maxTag := min(int64(math.MaxUint32), int64(sys.MaxMtype)) // a C long's on 32-bit Linux
	tx, err := endpoints.SysVSender[string](q, ipcchan.WithTag(uint32(maxTag)))
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, "v"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for _, want := range []string{"v", queueMarker} {
		if typ, n, err := q.Receive(ctx, endpoints.MsgSelect{Type: maxTag}, buf); err != nil || typ != maxTag || string(buf[:n]) != want {
			t.Fatalf("type %d, %q, %v; want type %d, %q", typ, buf[:n], err, maxTag, want)
		}
	}
}

// A SysV queue handed down with a message type a typed Sender cannot send
// is refused, never cut to 32 bits.
func TestInheritSysVSenderRefusesLongType(t *testing.T) {
	q, err := newTestQueue()
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(q.ID())
	maxTag := min(int64(math.MaxUint32), int64(sys.MaxMtype)) // a C long's on 32-bit Linux
	t.Setenv(endpoints.EnvFiles, "long=sysvmq:"+id+":4294967297:,negative=sysvmq:"+id+":-3:,max=sysvmq:"+id+":"+strconv.FormatInt(maxTag, 10)+":")
	for _, name := range []string{"long", "negative"} {
		if tx, err := endpoints.InheritSender[string](name); !errors.Is(err, endpoints.ErrMsgType) {
			if err == nil {
				tx.Close()
			}
			t.Errorf("%s: %v, want ErrMsgType", name, err)
		}
	}
	tx, err := endpoints.InheritSender[string]("max", ipcchan.WithForeignPeer())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if err := tx.Send(testCtx(t), "v"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if typ, n, err := q.Receive(testCtx(t), endpoints.MsgSelect{}, buf); err != nil || typ != maxTag || string(buf[:n]) != "v" {
		t.Fatalf("type %d, %q, %v", typ, buf[:n], err)
	}
}

func init() {
	// make-test-queues makes three test queues as the conformance suite
	// does, prints their ids, and waits to be killed.
	childRoles["make-test-queues"] = func() error {
		for range 3 {
			q, err := newTestQueue()
			if err != nil {
				return err
			}
			fmt.Println(q.ID())
		}
		for { // until killed, as a test timeout would
			time.Sleep(time.Hour)
		}
	}
}

// A test process killed before its TestMain removed its queues: the next
// run's TestMain removes them, and leaves alone those of a process that
// still runs (this one's).
func TestKilledRunsQueuesAreReaped(t *testing.T) {
	mine, err := newTestQueue()
	if err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(t, "make-test-queues")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var ids []int
	lines := bufio.NewScanner(out)
	for len(ids) < 3 && lines.Scan() {
		id, err := strconv.Atoi(lines.Text())
		if err != nil {
			t.Fatalf("child says %q", lines.Text())
		}
		ids = append(ids, id)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(ids) != 3 {
		t.Fatalf("child made %d queues, want 3", len(ids))
	}
	var ds sys.MsqidDs
	for _, id := range ids {
		if err := sys.MsgctlStat(id, &ds); err != nil {
			t.Fatalf("queue %d of the killed child: %v before the reaping", id, err)
		}
	}
	reapKilledRuns()
	for _, id := range ids {
		if err := sys.MsgctlStat(id, &ds); err == nil {
			sys.MsgctlRmid(id)
			t.Errorf("queue %d of the killed child left after reapKilledRuns", id)
		}
	}
	if err := sys.MsgctlStat(mine.ID(), &ds); err != nil {
		t.Errorf("reapKilledRuns removed a queue of this running process: %v", err)
	}
}
