package endpoints_test

// Attacks on the "nothing lost, nothing crashes" fixes, as a hostile peer
// process and as a careless user would make them. Each test names the
// claim it tries to break.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

func init() {
	// review-dgram-intruder dials the unixgram socket at DGRAM_ADDR, sends
	// one value and closes (its end-of-stream marker), then says "done".
	childRoles["review-dgram-intruder"] = func() error {
		ctx := context.Background()
		// An intruder skips its own check of the receiver.
		tx, err := endpoints.DialPacket[string](ctx, "unixgram", os.Getenv("DGRAM_ADDR"), endpoints.AnyUser())
		if err != nil {
			return err
		}
		if err := tx.Send(ctx, "intruder"); err != nil {
			return err
		}
		if err := tx.Close(); err != nil {
			return err
		}
		fmt.Println("done")
		return nil
	}
	// review-fd-datagrams connects a socket of type DGRAM_TYPE
	// ("unixgram" or "unixpacket") to DGRAM_ADDR and sends four messages
	// "fd" (after a tag word of 0 with DGRAM_TAGGED set, as a typed
	// sender does), each with 253 descriptors attached, then says "sent"
	// and waits for its standard input to end.
	childRoles["review-fd-datagrams"] = func() error {
		typ := unix.SOCK_DGRAM
		if os.Getenv("DGRAM_TYPE") == "unixpacket" {
			typ = unix.SOCK_SEQPACKET
		}
		fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: os.Getenv("DGRAM_ADDR")}); err != nil {
			return err
		}
		devnull, err := os.Open(os.DevNull)
		if err != nil {
			return err
		}
		fds := make([]int, 253)
		for i := range fds {
			fds[i] = int(devnull.Fd())
		}
		msg := []byte("fd")
		if os.Getenv("DGRAM_TAGGED") != "" {
			msg = append([]byte{0, 0, 0, 0}, msg...) // tag 0, then the value
		}
		for range 4 {
			if err := unix.Sendmsg(fd, msg, unix.UnixRights(fds...), nil, 0); err != nil {
				return err
			}
		}
		fmt.Println("sent")
		io.Copy(io.Discard, os.Stdin)
		return nil
	}
	// review-sem-after-unmap makes an unnamed semaphore in a memfd (or, with
	// SEM_WAIT set, starts an Acquire that waits on it), closes the
	// mapping under it, and uses the semaphore: each call must return its
	// "closed" result. It prints one line per call.
	childRoles["review-sem-after-unmap"] = func() error {
		m, err := endpoints.NewMemfd("review-sem", 4096)
		if err != nil {
			return err
		}
		s, err := endpoints.InitSemaphore(m, 64, 0)
		if err != nil {
			return err
		}
		waited := make(chan error, 1)
		if os.Getenv("SEM_WAIT") != "" {
			go func() { waited <- s.Acquire(context.Background(), 1) }()
			for !waiting(m, 64) { // until the Acquire sleeps, counted as a waiter
				time.Sleep(time.Millisecond)
			}
		}
		if err := m.Close(); err != nil {
			return err
		}
		if os.Getenv("SEM_WAIT") != "" {
			fmt.Println("waiting Acquire:", errors.Is(<-waited, os.ErrClosed))
		}
		fmt.Println("Value:", s.Value())
		fmt.Println("TryAcquire:", s.TryAcquire(1))
		fmt.Println("Post:", errors.Is(s.Post(), os.ErrClosed))
		fmt.Println("Acquire:", errors.Is(s.Acquire(context.Background(), 1), os.ErrClosed))
		s.Release(1)
		return s.Close()
	}
	// review-send-n sends the ints 0 to N-1 on the Conn handed down as
	// "conn", some with a file attached (every seventh), then closes it.
	childRoles["review-send-n"] = func() error {
		c, err := endpoints.InheritConn[int, int]("conn")
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := context.Background()
		n, _ := strconv.Atoi(os.Getenv("REVIEW_N"))
		for i := range n {
			if i%7 == 0 {
				err = c.Sender().SendFiles(ctx, i, os.Stdin)
			} else {
				err = c.Send(ctx, i)
			}
			if err != nil {
				return err
			}
		}
		return c.Sender().Close()
	}
	// review-fifo-writer opens the FIFO at FIFO_PATH for writing, says
	// "open", waits for a line on its standard input, sends FIFO_N values
	// and exits.
	childRoles["review-fifo-writer"] = func() error {
		ctx := context.Background()
		tx, err := endpoints.OpenFIFOSender[string](ctx, os.Getenv("FIFO_PATH"))
		if err != nil {
			return err
		}
		fmt.Println("open")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return err
		}
		n, _ := strconv.Atoi(os.Getenv("FIFO_N"))
		for i := range n {
			if err := tx.Send(ctx, "v"+strconv.Itoa(i)); err != nil {
				return err
			}
		}
		return tx.Close()
	}
	// review-hold-lock takes the exclusive lock on LOCK_PATH (OFD locks),
	// says "held" and keeps it until its standard input ends.
	childRoles["review-hold-lock"] = func() error {
		l, err := endpoints.OpenLock(os.Getenv("LOCK_PATH"), endpoints.OFDLocks)
		if err != nil {
			return err
		}
		if err := l.Lock(context.Background()); err != nil {
			return err
		}
		fmt.Println("held")
		io.Copy(io.Discard, os.Stdin)
		return l.Close()
	}
}

// Claim 1 (end is real, and it comes): a writer process that opened the
// FIFO before this receiver did (another reader had it open: a receiver
// being replaced, a C reader) sends three values and exits. The receiver
// gets the three values, and then the end of the stream — the writer whose
// values it read has gone and nothing is left. Linux reports no hang-up
// to a reader opened after the writer (the writer count it saw at open
// has not changed), so a receiver that waits for POLLHUP waits for ever.
func TestReviewFIFOEndAfterWriterThatCameFirst(t *testing.T) {
	ipcchantest.CheckFDs(t)
	path := fifoPath(t)
	// Another reader, so that the writer can open before our receiver.
	other, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	otherOpen := true
	defer func() {
		if otherOpen {
			unix.Close(other)
		}
	}()
	w := startChild(t, "review-fifo-writer", "FIFO_PATH="+path, "FIFO_N=3")
	if got := w.line(t); got != "open" {
		t.Fatalf("writer says %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rx, err := endpoints.OpenFIFOReceiver[string](ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	unix.Close(other)
	otherOpen = false
	if _, err := io.WriteString(w.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		v, err := rx.Recv(ctx)
		if err != nil || v != "v"+strconv.Itoa(i) {
			t.Fatalf("value %d: %q, %v", i, v, err)
		}
	}
	if err := w.cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	// The writer is gone and everything it wrote is read: the end.
	end, cancelEnd := context.WithTimeout(ctx, 10*time.Second)
	defer cancelEnd()
	if v, err := rx.Recv(end); err != io.EOF {
		t.Fatalf("Recv after the only writer exited = %q, %v; want io.EOF", v, err)
	}
}

// Claim 7 (FileLock is a mutex that Close frees): a Lock waiting for a
// lock another process holds is ended by Close, which returns at once; it
// does not wait for the other process to let go.
func TestReviewFileLockCloseEndsAWaitingLock(t *testing.T) {
	ipcchantest.CheckFDs(t)
	path := filepath.Join(t.TempDir(), "lock")
	holder := startChild(t, "review-hold-lock", "LOCK_PATH="+path)
	if got := holder.line(t); got != "held" {
		t.Fatalf("holder says %q", got)
	}
	defer holder.stdin.Close()
	l, err := endpoints.OpenLock(path, endpoints.OFDLocks)
	if err != nil {
		t.Fatal(err)
	}
	locked := make(chan error, 1)
	go func() { locked <- l.Lock(context.Background()) }()
	// Wait until the Lock is in its wait for the other process.
	waitFor(t, "the Lock waits for the other process", func() bool {
		select {
		case err := <-locked:
			t.Fatalf("Lock while another process holds the lock = %v", err)
		default:
		}
		buf := make([]byte, 1<<20)
		return strings.Contains(string(buf[:runtime.Stack(buf, true)]), "endpoints.(*FileLock).wait(")
	})
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		holder.stdin.Close() // let the test end
		<-closed
		t.Fatal("Close waited for another process to release the lock that a Lock of this FileLock was waiting for")
	}
	select {
	case err := <-locked:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("the waiting Lock returned %v, want an error wrapping os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting Lock did not return after Close")
	}
}

// Claim 10 (misuse is an error): a SemCounter has Weighted's method set,
// and Weighted.Acquire(ctx, 0) takes nothing and returns at once (as our
// POSIX Semaphore's does). A semop of 0 instead waits for the counter to
// be zero: Acquire(ctx, 0) on a counter holding tokens waited for ever,
// TryAcquire(0) failed and Release(0) panicked. A negative count, which
// would give tokens back, is refused.
func TestReviewSemCounterAcquireZero(t *testing.T) {
	set, err := endpoints.CreateSemSet(endpoints.IPCPrivate, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Remove()
	if err := set.SetValue(0, 3); err != nil {
		t.Fatal(err)
	}
	c := set.Counter(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Acquire(ctx, 0); err != nil {
		t.Fatalf("Acquire(ctx, 0) on a counter of 3 = %v, want nil at once", err)
	}
	if !c.TryAcquire(0) {
		t.Fatal("TryAcquire(0) on a counter of 3 = false, want true")
	}
	if err := c.Acquire(ctx, -2); err == nil {
		t.Fatal("Acquire(ctx, -2) = nil, want an error")
	}
	if c.TryAcquire(-2) {
		t.Fatal("TryAcquire(-2) = true, want false")
	}
	c.Release(0) // a semop of 0 with IPC_NOWAIT fails on a counter above zero: Release panicked
	if v, err := set.Value(0); err != nil || v != 3 {
		t.Fatalf("counter = %d, %v after taking nothing; want 3", v, err)
	}
}

// Claim 10 (misuse is an error, never a crash): constructors given a nil
// or zero object return an error naming what to make; none panics, and a
// zero Mapping never reaches SysV segment 0, which may be somebody's.
// (A zero os.File is left out: its own methods panic.)
func TestReviewNilAndZeroArguments(t *testing.T) {
	ipcchantest.CheckFDs(t)
	var nilMap *endpoints.Mapping
	calls := []struct {
		name string
		f    func() error
	}{
		{"FormatRing(nil)", func() error { return endpoints.FormatRing(nilMap) }},
		{"RingSender(nil)", func() error { _, err := endpoints.RingSender[int](nilMap); return err }},
		{"RingReceiver(nil)", func() error { _, err := endpoints.RingReceiver[int](nilMap); return err }},
		{"RingSender(zero)", func() error { _, err := endpoints.RingSender[int](&endpoints.Mapping{}); return err }},
		{"RingReceiver(zero)", func() error { _, err := endpoints.RingReceiver[int](&endpoints.Mapping{}); return err }},
		{"FormatRing(zero)", func() error { return endpoints.FormatRing(&endpoints.Mapping{}) }},
		{"InitSemaphore(nil)", func() error { _, err := endpoints.InitSemaphore(nilMap, 0, 1); return err }},
		{"ViewOf(nil)", func() error { _, err := endpoints.ViewOf[int64](nilMap, 0); return err }},
		{"MappingFromFile(nil)", func() error { _, err := endpoints.MappingFromFile(nil); return err }},
		{"FileReceiver(nil)", func() error { _, err := endpoints.FileReceiver[int](nil); return err }},
		{"FileSender(nil)", func() error { _, err := endpoints.FileSender[int](nil); return err }},
		{"SemaphoreSender(nil)", func() error { _, err := endpoints.SemaphoreSender(nil); return err }},
		{"SemaphoreReceiver(nil)", func() error { _, err := endpoints.SemaphoreReceiver(nil); return err }},
		{"SemSetSender(nil)", func() error { _, err := endpoints.SemSetSender(nil, 0); return err }},
		{"SemSetReceiver(nil)", func() error { _, err := endpoints.SemSetReceiver(nil, 0); return err }},
		{"LockChannel(nil)", func() error { _, _, err := endpoints.LockChannel(nil); return err }},
		{"Attach(Pass(nil))", func() error {
			_, err := endpoints.Attach(helperCmd(t, "none"), endpoints.Pass("x", nil))
			return err
		}},
		{"Attach(Share(nil))", func() error {
			_, err := endpoints.Attach(helperCmd(t, "none"), endpoints.Share("x", nil))
			return err
		}},
	}
	for _, c := range calls {
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s panicked: %v", c.name, p)
				}
			}()
			err := c.f()
			switch {
			case err == nil:
				t.Errorf("%s = nil, want an error", c.name)
			case strings.Contains(err.Error(), "sysv"):
				t.Errorf("%s = %v: a zero Mapping reached a SysV segment", c.name, err)
			}
		}()
	}
}

// Claim 4 (no forged end of stream on datagrams) against another local
// user: an abstract unixgram socket has no permissions, so any user can
// send to it, and ListenPacket's peer check (here SameUser) is what keeps
// such a peer out. A process of another user sends a value and its
// end-of-stream marker; the receiver must take neither, and go on to
// receive the value of this user's sender and then the end of its stream.
func TestReviewUnixgramPeerCheckKeepsOtherUsersOut(t *testing.T) {
	ipcchantest.CheckFDs(t)
	addr := "@" + endpoints.ObjectName("review-dgram")[1:]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rx, _, err := endpoints.ListenPacket[string](ctx, "unixgram", addr, endpoints.SameUser())
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	cmd := otherUser(t, "review-dgram-intruder", "DGRAM_ADDR="+addr)
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "done" {
		t.Fatalf("the other user's sender: %q, %v", out, err)
	}
	tx, err := endpoints.DialPacket[string](ctx, "unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, "ours"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	v, err := rx.Recv(ctx)
	if err != nil || v != "ours" {
		t.Fatalf("Recv = %q, %v; want our own sender's value (another user's sender was refused by SameUser)", v, err)
	}
	if v, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("Recv after our sender closed = %q, %v; want io.EOF", v, err)
	}
}

// Claim 13 (descriptors only for receivers that ask) on the message
// sockets: a peer process sends four messages with 253 descriptors each to
// a unixgram receiver and to a raw unixpacket one (which reads with a
// control buffer, for the sender's credentials); neither keeps any, and
// the values arrive.
func TestReviewDatagramReceiversKeepNoDescriptors(t *testing.T) {
	for _, tc := range []struct {
		name, network string
		raw           bool
	}{
		{"unixgram", "unixgram", false},
		{"unixpacket", "unixpacket", false},
		{"unixpacket-raw", "unixpacket", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			addr := filepath.Join(t.TempDir(), "s")
			opts := []ipcchan.Option{ipcchan.WithHandshake(false)}
			if tc.raw {
				opts = append(opts, ipcchan.WithForeignPeer())
			}
			env := []string{"DGRAM_ADDR=" + addr, "DGRAM_TYPE=" + tc.network}
			if !tc.raw {
				env = append(env, "DGRAM_TAGGED=1")
			}
			if tc.network == "unixgram" {
				rx, _, err := endpoints.ListenPacket[string](ctx, "unixgram", addr, opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer rx.Close()
				receiveAll(t, rx, startChild(t, "review-fd-datagrams", env...))
				return
			}
			l, err := endpoints.Listen[string, string](ctx, "unixpacket", addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			flood := startChild(t, "review-fd-datagrams", env...)
			c, err := l.Accept(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			receiveAll(t, c.Receiver(), flood)
		})
	}
}

// receiveAll takes the flooding child's four messages and checks that no
// descriptor came with them.
func receiveAll(t *testing.T, rx *ipcchan.Receiver[string], flood *child) {
	t.Helper()
	if got := flood.line(t); got != "sent" {
		t.Fatalf("flooding peer says %q", got)
	}
	before := len(readDir(t, "/proc/self/fd"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 4 {
		if v, err := rx.Recv(ctx); err != nil || v != "fd" {
			t.Fatalf("message %d: %q, %v", i, v, err)
		}
	}
	after := len(readDir(t, "/proc/self/fd"))
	if after > before {
		t.Errorf("the receives kept %d descriptors a peer sent (%d open before, %d after)", after-before, before, after)
	}
}

// Claim 3 (a Send that returned nil is delivered before the end of
// stream), on a stream whose reader is slow: Sends return nil once their
// frames are in the sender's buffer, and Close flushes it for at most the
// linger time. When the linger runs out, the frames still buffered are
// dropped — Close says so — but the stream then ends cleanly: the
// receiver reads every whole frame that reached the pipe and then io.EOF,
// with nothing to tell it that values whose Send returned nil are missing.
// (With atomic writes every write holds whole frames, so no torn frame
// gives it away either.)
func TestReviewLingerDropLooksLikeACleanEnd(t *testing.T) {
	t.Skip("BUG: on a stream, frames dropped when Close's linger runs out (the reader did not drain the pipe in time) end the stream with a clean io.EOF at the receiver, so values whose Send returned nil are lost without the receiver knowing; only the sender's Close reports it. No local fix: a full pipe has no room for a marker, and a pipe has no reset")
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithAtomicWrites(true), ipcchan.WithLinger(10*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 100 // 100 KiB: more than the pipe holds, less than pipe and send buffer together
	value := make([]byte, 1024)
	for i := range n {
		if err := tx.Send(ctx, value); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	closeErr := tx.Close()
	got := 0
	for {
		_, err := rx.Recv(ctx)
		if err != nil {
			if err == io.EOF && got < n {
				t.Fatalf("%d of %d values whose Send returned nil arrived, then a clean io.EOF (the sender's Close said: %v)", got, n, closeErr)
			}
			break
		}
		got++
	}
}

// waiting reports whether a sleeping Acquire is counted in the semaphore
// at off in m (glibc's waiter count, the high half of its 64-bit word).
func waiting(m *endpoints.Mapping, off int) bool {
	var n uint32
	v, err := endpoints.ViewOf[[2]uint32](m, off)
	if err == nil {
		v.Update(func(p *[2]uint32) { n = p[1] })
	}
	return n != 0
}

// Claim 10 (misuse is an error, never a crash): an unnamed semaphore whose
// mapping was closed under it (the caller's, which SemaphoreAt and
// InitSemaphore use in place) returns its "closed" results, as after its
// own Close: Value -1, TryAcquire false, Post and Acquire os.ErrClosed,
// Release nothing; an Acquire waiting on it when the mapping closed
// returns os.ErrClosed. Each touched unmapped memory: SIGSEGV killed the
// process (memfds and SysV segments are not under the fault guard, and
// on the others the fault was reported as a peer shrinking the memory).
// Run in a child, since the failure is a crash.
func TestReviewSemaphoreAfterItsMappingCloses(t *testing.T) {
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("waiting=%v", wait), func(t *testing.T) {
			env := []string{}
			want := "Value: -1\nTryAcquire: false\nPost: true\nAcquire: true\n"
			if wait {
				env = append(env, "SEM_WAIT=1")
				want = "waiting Acquire: true\n" + want
			}
			cmd := helperCmd(t, "review-sem-after-unmap", env...)
			cmd.Stderr = nil
			out, err := cmd.CombinedOutput()
			if err != nil || string(out) != want {
				t.Fatalf("a semaphore used after its mapping closed: %v\n%s", err, firstLines(string(out), 6))
			}
		})
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

// Claim 2 (nothing read ahead is lost or reordered) on the receive forms
// the conformance rule ChanMixed does not mix in: a sender process sends
// 0..n-1 over a Unix socket (some values with a file); each value is
// taken after a Chan call that may have left one read ahead, in turn by
// the channel itself, Select, RecvInto, RecvFiles and TryRecv. Every value
// arrives once, in order, then the end; a value the Chan goroutine had
// read ahead comes without its file (documented), never with another's.
func TestReviewChanHandsBackToEveryReceiveForm(t *testing.T) {
	ipcchantest.CheckFDs(t)
	const n = 700
	mine, theirs, err := endpoints.SocketPair[int, int](ipcchan.WithRecvFiles(transport.DefaultRecvFiles))
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	p := startHelper(t, "review-send-n", []string{"REVIEW_N=" + strconv.Itoa(n)}, endpoints.Pass("conn", theirs))
	rx := mine.Receiver()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	next := 0
	take := func(how string, v int, files []*os.File) {
		t.Helper()
		for _, f := range files {
			f.Close()
		}
		if v != next {
			t.Fatalf("%s: value %d, want %d", how, v, next)
		}
		if len(files) > 1 || len(files) == 1 && v%7 != 0 {
			t.Fatalf("%s: value %d came with %d files", how, v, len(files))
		}
		next++
	}
	for i := 0; next < n; i++ {
		switch i % 5 {
		case 0: // the channel, with a context of its own, cancelled after
			ictx, icancel := context.WithCancel(ctx)
			select {
			case v, ok := <-ipcchan.Chan(ictx, rx):
				if !ok {
					t.Fatalf("channel closed after %d values: %v", next, rx.Err())
				}
				take("Chan", v, nil)
			case <-ctx.Done():
				t.Fatalf("stalled after %d values", next)
			}
			icancel()
		case 1:
			ipcchan.Chan(ctx, rx)
			if _, err := ipcchan.Select(ctx, ipcchan.OnRecv(rx, func(v int) { take("Select", v, nil) })); err != nil {
				t.Fatalf("Select after %d values: %v", next, err)
			}
		case 2:
			ipcchan.Chan(ctx, rx)
			var v int
			if err := rx.RecvInto(ctx, &v); err != nil {
				t.Fatalf("RecvInto after %d values: %v", next, err)
			}
			take("RecvInto", v, nil)
		case 3:
			ipcchan.Chan(ctx, rx)
			v, files, err := rx.RecvFiles(ctx)
			if err != nil {
				t.Fatalf("RecvFiles after %d values: %v", next, err)
			}
			take("RecvFiles", v, files)
		case 4:
			ipcchan.Chan(ctx, rx)
			if v, err := rx.TryRecv(); err == nil {
				take("TryRecv", v, nil)
			} else if !errors.Is(err, ipcchan.ErrWouldBlock) {
				t.Fatalf("TryRecv after %d values: %v", next, err)
			}
		}
	}
	if v, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("after every value: %d, %v; want io.EOF", v, err)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("sender: %v", err)
	}
}
