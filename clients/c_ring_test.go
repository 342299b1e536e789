package clients_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/ctest"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// These tests run the ring of c/ipcchan.h (c/peers/ring_peer.c) against Go
// ring ends across real processes: Go writer to C reader and back, over a
// memfd RingPair made (with doorbells) and over named rings FormatRing
// made (futex only), several writer processes, killed peers, the hello,
// and hostile headers and records.

// Ring header offsets (PROTOCOL.md §8).
const (
	offVersion = 8
	offHSize   = 12
	offCap     = 16
	offMaxRec  = 24
	offLock    = 32
	offHead    = 64
	offTail    = 128
	offRWait   = 192
	offWWait   = 196
	offBells   = 200
	ringHeader = 256
)

// envRingChild names the Go child role of a re-executed test binary, and
// envRingN the number of records of the roles that send a count.
const (
	envRingChild = "IPCCHAN_CLIENTS_RING_CHILD"
	envRingN     = "IPCCHAN_CLIENTS_RING_N"
)

// ringChild runs this binary as a Go ring peer when envRingChild says so
// (see TestMain), and exits.
func ringChild() {
	role, ok := os.LookupEnv(envRingChild)
	if !ok {
		return
	}
	if err := ringChildRole(role); err != nil {
		fmt.Fprintf(os.Stderr, "ring child %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

func ringChildRole(role string) error {
	ctx := context.Background()
	switch role {
	case "echo": // records from "in" back to "out" until the end of stream
		rx, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		tx, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			return err
		}
		defer tx.Close()
		var buf []byte
		for {
			if err := rx.RecvInto(ctx, &buf); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := tx.Send(ctx, buf); err != nil {
				return err
			}
		}
	case "sink": // takes every record of "in", then prints the count
		rx, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		var buf []byte
		n := 0
		for {
			if err := rx.RecvInto(ctx, &buf); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			n++
		}
		fmt.Println(n)
		return nil
	case "write": // writes pattern records of writer 9 to "out" for ever
		tx, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			return err
		}
		defer tx.Close()
		max := tx.Transport().MaxMsgSize()
		for i := 0; ; i++ {
			tag, p := pattern(9, i, max)
			if err := tx.SendTag(ctx, tag, p); err != nil {
				return err
			}
		}
	case "ping", "source": // after a line on stdin: IPCCHAN_CLIENTS_N records of 64 bytes to "out", each echoed back on "in" (ping) or not (source); then "done"
		n, err := strconv.Atoi(os.Getenv(envRingN))
		if err != nil {
			return err
		}
		tx, err := endpoints.InheritSender[[]byte]("out")
		if err != nil {
			return err
		}
		var rx *ipcchan.Receiver[[]byte]
		if role == "ping" {
			if rx, err = endpoints.InheritReceiver[[]byte]("in"); err != nil {
				tx.Close()
				return err
			}
			defer rx.Close()
		}
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			tx.Close()
			return err
		}
		msg, buf := make([]byte, 64), make([]byte, 0, 64)
		for range n {
			if err := tx.Send(ctx, msg); err != nil {
				tx.Close()
				return err
			}
			if rx != nil {
				if err := rx.RecvInto(ctx, &buf); err != nil {
					tx.Close()
					return err
				}
			}
		}
		if err := tx.Close(); err != nil {
			return err
		}
		fmt.Println("done")
		return nil
	case "hold": // holds the receiving end "in", reading nothing, until killed
		rx, err := endpoints.InheritReceiver[[]byte]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		fmt.Println("holding")
		io.Copy(io.Discard, os.Stdin)
		return nil
	}
	return fmt.Errorf("unknown role %q", role)
}

// pattern returns record i of writer id as ring_peer.c writes it: tag
// id<<24|i, and (i*7919+id) mod (max+1) bytes j*31+i+id.
func pattern(id, i, max int) (uint32, []byte) {
	p := make([]byte, (i*7919+id)%(max+1))
	for j := range p {
		p[j] = byte(j*31 + i + id)
	}
	return uint32(id)<<24 | uint32(i), p
}

// line is what ring_peer prints for a record: tag, length, FNV-1a hash.
func line(tag uint32, p []byte) string {
	h := fnv.New64a()
	h.Write(p)
	return fmt.Sprintf("%d %d %016x", tag, len(p), h.Sum64())
}

// peer is a running C or Go child.
type peer struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

// startPeer starts cmd with the ends handed over (and extra files given in
// cmd.ExtraFiles with their IPCCHAN_FILES already in cmd.Env), its stdin
// and stdout piped; it is killed and reaped when tb ends.
func startPeer(tb testing.TB, cmd *exec.Cmd, ends ...endpoints.Handed) *peer {
	tb.Helper()
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if len(ends) > 0 {
		err = endpoints.Start(cmd, ends...)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		tb.Fatal(err)
	}
	p := &peer{t: tb, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	tb.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	return p
}

// cRing starts ring_peer (built as bin) with args, bounded: it is killed
// after a minute, which ends its output.
func cRing(tb testing.TB, bin string, args []string, ends ...endpoints.Handed) *peer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return startPeer(tb, exec.CommandContext(ctx, bin, args...), ends...)
}

// goRing starts this test binary as the Go ring child role, with env.
func goRing(tb testing.TB, role string, env []string, ends ...endpoints.Handed) *peer {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$", "-test.bench=^$")
	cmd.Env = append(append(os.Environ(), envRingChild+"="+role), env...)
	return startPeer(tb, cmd, ends...)
}

// next returns the peer's next line of output, failing if it has none.
func (p *peer) next() string {
	p.t.Helper()
	if !p.out.Scan() {
		p.t.Fatalf("the peer ended its output (%v)", p.out.Err())
	}
	return p.out.Text()
}

// expect checks the peer's next line.
func (p *peer) expect(want string) {
	p.t.Helper()
	if got := p.next(); got != want {
		p.t.Fatalf("the peer printed %q; want %q", got, want)
	}
}

// wait waits for the peer to exit and checks its status.
func (p *peer) wait(wantOK bool) {
	p.t.Helper()
	err := p.cmd.Wait()
	if (err == nil) != wantOK {
		p.t.Fatalf("the peer exited with %v", err)
	}
}

func ringCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wordOf returns the 32-bit word at off in m.
func wordOf(m *endpoints.Mapping, off int) *uint32 {
	return (*uint32)(unsafe.Pointer(&m.Bytes()[off]))
}

// viewOf maps the memory of a ring end again, to watch its header words.
func viewOf(t testing.TB, end interface{ File() (*os.File, error) }) *endpoints.Mapping {
	t.Helper()
	f, err := end.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := endpoints.MappingFromFile(f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// awaitSet waits until the word is non-zero (a side announced that it
// sleeps), for at most 20 seconds.
func awaitSet(t testing.TB, what string, word *uint32) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for atomic.LoadUint32(word) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// cring is a ring between this process and a C (or Go) child: Go keeps
// one end (tx or rx) and the child gets the other, handed over (hand) or
// opened by name (src).
type cring struct {
	src  string             // ring_peer's SRC for the child's end
	hand []endpoints.Handed // the child's end, handed over; nil for a named ring
	view *endpoints.Mapping // the ring's memory, to watch its words
	tx   *ipcchan.Sender[[]byte]
	rx   *ipcchan.Receiver[[]byte]
}

// ringKinds are the rings the tests run over: a RingPair memfd with
// doorbells, handed over with Pass (IPCCHAN_FILES name=M+R+W), and a
// named POSIX shared memory ring that FormatRing made, which has no
// doorbells (both sides sleep on the futex) and the C peer opens by name.
var ringKinds = []string{"bells", "shm"}

// The ends a test keeps in this process (newRing): the writer, the reader,
// or both (the child then shares the writer's end).
const (
	keepTx = iota
	keepRx
	keepBoth
)

// newRing makes a ring of kind and size; Go keeps the ends keep says, with
// opts (and a receiver waiting for senders ends of stream). They are closed
// when t ends.
func newRing(t testing.TB, kind string, size int, keep int, senders int, opts ...ipcchan.Option) *cring {
	t.Helper()
	r := &cring{}
	rxOpts := append([]ipcchan.Option{ipcchan.WithSenders(senders)}, opts...)
	switch kind {
	case "bells":
		tx, rx, err := endpoints.RingPair[[]byte](size, rxOpts...)
		if err != nil {
			t.Fatal(err)
		}
		r.src, r.view = "inherit:ring", viewOf(t, tx)
		switch keep {
		case keepTx:
			r.tx, r.hand = tx, []endpoints.Handed{endpoints.Pass("ring", rx)}
		case keepRx:
			r.rx, r.hand = rx, []endpoints.Handed{endpoints.Pass("ring", tx)}
		default:
			// The children share tx, which then posts no end of stream
			// here; this process writes through an end of its own, on
			// the same memfd (which finds the doorbells in this process).
			t.Cleanup(func() { tx.Close() })
			r.rx, r.hand = rx, []endpoints.Handed{endpoints.Share("ring", tx)}
			f, err := tx.File()
			if err != nil {
				t.Fatal(err)
			}
			m, err := endpoints.MappingFromFile(f)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			r.tx, err = endpoints.RingSender[[]byte](m, opts...)
			m.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	case "shm":
		name := endpoints.ObjectName("cring")
		m, err := endpoints.CreateShm(name, size)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Remove(); m.Close() })
		if err := endpoints.FormatRing(m); err != nil {
			t.Fatal(err)
		}
		r.src, r.view = "shm:"+name, m
		if keep != keepRx {
			if r.tx, err = endpoints.RingSender[[]byte](m, opts...); err != nil {
				t.Fatal(err)
			}
		}
		if keep != keepTx {
			if r.rx, err = endpoints.RingReceiver[[]byte](m, rxOpts...); err != nil {
				r.tx.Close()
				t.Fatal(err)
			}
		}
	default:
		t.Fatalf("no ring kind %q", kind)
	}
	t.Cleanup(func() {
		if r.tx != nil {
			r.tx.Close()
		}
		if r.rx != nil {
			r.rx.Close()
		}
	})
	return r
}

// max returns the ring's largest record, from its header.
func (r *cring) max() int { return int(binary.NativeEndian.Uint32(r.view.Bytes()[offMaxRec:])) }

// Go writer → C reader: thousands of records of sizes 0 to the largest
// with their tags arrive exactly and in order, read by copy and in place;
// the C reader sleeping (rwait set) wakes on the first record, and a Go
// Send parked on the full ring wakes when the C reader frees room; then
// the end of stream.
func TestCRingGoToC(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	for _, kind := range ringKinds {
		for _, mode := range []string{"recv", "peek"} {
			t.Run(kind+"/"+mode, func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				r := newRing(t, kind, 256+8192, keepTx, 1)
				args := []string{"read", r.src, "-pause-after", "2"}
				if mode == "peek" {
					args = append(args, "-peek")
				}
				c := cRing(t, bin, args, r.hand...)
				ctx := ringCtx(t)
				tx := r.tx
				max := r.max()

				awaitSet(t, "the C reader to sleep", wordOf(r.view, offRWait))
				i := 0
				send := func() string {
					tag, p := pattern(1, i, max)
					i++
					if err := tx.SendTag(ctx, tag, p); err != nil {
						t.Fatalf("send %d: %v", i-1, err)
					}
					return line(tag, p)
				}
				c.expect(send())
				c.expect(send())
				c.expect("paused")
				// The ring fills while the C reader pauses; a Send parks.
				var want []string
				for ; ; i++ {
					_, p := pattern(1, i, max)
					if err := tx.TrySend(p); err == ipcchan.ErrWouldBlock {
						break
					} else if err != nil {
						t.Fatal(err)
					}
					want = append(want, line(0, p))
				}
				tag, p := pattern(1, i, max)
				i++
				want = append(want, line(tag, p))
				done := make(chan error, 1)
				go func() { done <- tx.SendTag(ctx, tag, p) }()
				awaitSet(t, "the Go Send to park on the full ring", wordOf(r.view, offWWait))
				fmt.Fprintln(c.in, "go")
				if err := <-done; err != nil {
					t.Fatalf("the parked Send: %v", err)
				}
				for _, w := range want {
					c.expect(w)
				}
				const many = 3000
				first := i
				errs := make(chan error, 1)
				go func() {
					for j := first; j < first+many; j++ {
						tag, p := pattern(1, j, max)
						if err := tx.SendTag(ctx, tag, p); err != nil {
							errs <- err
							return
						}
					}
					errs <- tx.Close()
				}()
				for j := first; j < first+many; j++ {
					tag, p := pattern(1, j, max)
					c.expect(line(tag, p))
				}
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
				c.expect("eos")
				c.wait(true)
			})
		}
	}
}

// recvPattern receives the next record and checks it is record i of
// writer id.
func recvPattern(t testing.TB, ctx context.Context, rx *ipcchan.Receiver[[]byte], id, i, max int) {
	t.Helper()
	v, tag, err := rx.RecvTag(ctx)
	wantTag, want := pattern(id, i, max)
	if err != nil || tag != wantTag || string(v) != string(want) {
		t.Fatalf("record %d of writer %d: tag %#x, %d bytes, %v; want tag %#x, %d bytes", i, id, tag, len(v), err, wantTag, len(want))
	}
}

// C writer → Go reader: a Go receiver parked (rwait set) wakes on the C
// writer's first record; the C writer sleeps (wwait set) on the full ring
// and wakes when the Go receiver frees room; thousands of records, copied
// in and written in place, arrive exactly and in order; then the end of
// stream.
func TestCRingCToGo(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	for _, kind := range ringKinds {
		for _, mode := range []string{"send", "reserve"} {
			t.Run(kind+"/"+mode, func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				r := newRing(t, kind, 256+8192, keepRx, 1)
				const n = 3000
				args := []string{"write", r.src, "-id", "2", "-n", strconv.Itoa(n), "-wait-line"}
				if mode == "reserve" {
					args = append(args, "-reserve")
				}
				c := cRing(t, bin, args, r.hand...)
				ctx := ringCtx(t)
				rx := r.rx
				max := r.max()
				c.expect("ready")

				got := make(chan error, 1)
				go func() {
					v, tag, err := rx.RecvTag(ctx)
					if wantTag, want := pattern(2, 0, max); err == nil && (tag != wantTag || string(v) != string(want)) {
						err = fmt.Errorf("tag %#x, %d bytes; want %#x, %d bytes", tag, len(v), wantTag, len(want))
					}
					got <- err
				}()
				awaitSet(t, "the Go receiver to park", wordOf(r.view, offRWait))
				fmt.Fprintln(c.in, "go")
				if err := <-got; err != nil {
					t.Fatalf("the parked receive: %v", err)
				}
				awaitSet(t, "the C writer to sleep on the full ring", wordOf(r.view, offWWait))
				for i := 1; i < n; i++ {
					recvPattern(t, ctx, rx, 2, i, max)
				}
				if v, err := rx.Recv(ctx); err != io.EOF {
					t.Fatalf("after the C writer's records: %q, %v; want io.EOF", v, err)
				}
				c.expect("done")
				c.wait(true)
			})
		}
	}
}

// collect receives from rx until the end of stream and checks that every
// writer's records arrive whole, in its order, none lost: n of each of the
// writers ids.
func collect(t testing.TB, ctx context.Context, rx *ipcchan.Receiver[[]byte], max, n int, ids ...int) {
	t.Helper()
	next := map[int]int{}
	for _, id := range ids {
		next[id] = 0
	}
	for {
		v, tag, err := rx.RecvTag(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("receive after %v: %v", next, err)
		}
		id := int(tag >> 24)
		i, ok := next[id]
		if !ok {
			t.Fatalf("a record of writer %d (tag %#x, %q)", id, tag, v)
		}
		if wantTag, want := pattern(id, i, max); tag != wantTag || string(v) != string(want) {
			t.Fatalf("writer %d: tag %#x, %d bytes; want record %d: tag %#x, %d bytes", id, tag, len(v), i, wantTag, len(want))
		}
		next[id] = i + 1
	}
	for _, id := range ids {
		if next[id] != n {
			t.Errorf("writer %d: %d records; want %d", id, next[id], n)
		}
	}
}

// sendPattern sends n records of writer id with tx, then closes it.
func sendPattern(ctx context.Context, tx *ipcchan.Sender[[]byte], id, n int) error {
	max := tx.Transport().MaxMsgSize()
	for i := range n {
		tag, p := pattern(id, i, max)
		if err := tx.SendTag(ctx, tag, p); err != nil {
			return err
		}
	}
	return tx.Close()
}

// Two C writer processes and a Go writer into one ring: the write lock
// keeps every record whole, each writer's records arrive in its order,
// nothing is lost, and the reader ends after the three ends of stream.
func TestCRingMultiWriter(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	for _, kind := range ringKinds {
		t.Run(kind, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			r := newRing(t, kind, 256+16384, keepBoth, 3)
			const n = 2000
			ctx := ringCtx(t)
			max := r.max()
			var cs []*peer
			for _, id := range []string{"4", "5"} {
				args := []string{"write", r.src, "-id", id, "-n", strconv.Itoa(n)}
				if id == "4" {
					args = append(args, "-reserve") // in place, holding the lock longer
				}
				cs = append(cs, cRing(t, bin, args, r.hand...))
			}
			errs := make(chan error, 1)
			go func() { errs <- sendPattern(ctx, r.tx, 6, n) }()
			collect(t, ctx, r.rx, max, n, 4, 5, 6)
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
			for _, c := range cs {
				c.expect("done")
				c.wait(true)
			}
		})
	}
}

// A C writer SIGKILLed while it holds the write lock, its record half
// written, leaves the lock to a dead (unreaped: a zombie) process. The
// writers after it — C first, then Go, and Go first, then C — see that the
// holder has exited, take the lock, and go on; the half-written record
// never appears.
func TestCRingDeadLockHolder(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	for _, kind := range ringKinds {
		for _, first := range []string{"c", "go"} {
			t.Run(kind+"/"+first+"-first", func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				r := newRing(t, kind, 256+8192, keepBoth, 2)
				ctx := ringCtx(t)
				max := r.max()
				holder := cRing(t, bin, []string{"holdlock", r.src}, r.hand...)
				holder.expect("locked")
				pid := holder.cmd.Process.Pid
				if got := atomic.LoadUint32(wordOf(r.view, offLock)); got != uint32(pid) {
					t.Fatalf("the lock word is %d; want the holder's pid %d", got, pid)
				}
				// Killed, not reaped (its cleanup does): a zombie.
				if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				const n = 500
				cArgs := []string{"write", r.src, "-id", "7", "-n", strconv.Itoa(n)}
				received := make(chan struct{})
				go func() {
					defer close(received)
					collect(t, ctx, r.rx, max, n, 7, 8)
				}()
				if first == "c" {
					c := cRing(t, bin, cArgs, r.hand...)
					c.expect("done")
					c.wait(true)
					if err := sendPattern(ctx, r.tx, 8, n); err != nil {
						t.Fatal(err)
					}
				} else {
					if err := sendPattern(ctx, r.tx, 8, n); err != nil {
						t.Fatal(err)
					}
					c := cRing(t, bin, cArgs, r.hand...)
					c.expect("done")
					c.wait(true)
				}
				<-received
			})
		}
	}
}

// A peer SIGKILLed mid-stream: the survivor gets a clear error once the
// records already committed are taken — never a false end of stream,
// never a hang. A Go end watches the C peer (WatchPeer: ErrPeerGone); a C
// end watches the Go peer (-watch: EPIPE).
func TestCRingKilledPeer(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	t.Run("c-writer", func(t *testing.T) {
		ipcchantest.CheckFDs(t)
		r := newRing(t, "bells", 256+8192, keepRx, 1)
		c := cRing(t, bin, []string{"write", r.src, "-id", "2", "-n", "1000000000"}, r.hand...)
		ctx := ringCtx(t)
		if err := r.rx.WatchPeer(c.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		max := r.max()
		for i := range 100 {
			recvPattern(t, ctx, r.rx, 2, i, max)
		}
		c.cmd.Process.Kill()
		for i := 100; ; i++ {
			v, tag, err := r.rx.RecvTag(ctx)
			if err != nil {
				if !errors.Is(err, ipcchan.ErrPeerGone) {
					t.Fatalf("after the C writer was killed: %v; want ErrPeerGone", err)
				}
				break
			}
			if wantTag, want := pattern(2, i, max); tag != wantTag || string(v) != string(want) {
				t.Fatalf("record %d: tag %#x, %d bytes; want %#x, %d bytes", i, tag, len(v), wantTag, len(want))
			}
		}
	})
	t.Run("c-reader", func(t *testing.T) {
		ipcchantest.CheckFDs(t)
		r := newRing(t, "bells", 256+8192, keepTx, 1)
		c := cRing(t, bin, []string{"read", r.src}, r.hand...)
		ctx := ringCtx(t)
		if err := r.tx.WatchPeer(c.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
		max := r.max()
		tag, p := pattern(1, 0, max)
		if err := r.tx.SendTag(ctx, tag, p); err != nil {
			t.Fatal(err)
		}
		c.expect(line(tag, p))
		c.cmd.Process.Kill()
		for i := 1; ; i++ {
			tag, p := pattern(1, i, max)
			if err := r.tx.SendTag(ctx, tag, p); err != nil {
				if !errors.Is(err, ipcchan.ErrPeerGone) {
					t.Fatalf("after the C reader was killed: %v; want ErrPeerGone", err)
				}
				break
			}
		}
	})
	t.Run("go-writer", func(t *testing.T) {
		ipcchantest.CheckFDs(t)
		tx, rx, err := endpoints.RingPair[[]byte](256 + 8192)
		if err != nil {
			t.Fatal(err)
		}
		g := goRing(t, "write", nil, endpoints.Pass("out", tx))
		c := cRing(t, bin, []string{"read", "inherit:ring", "-watch", strconv.Itoa(g.cmd.Process.Pid)}, endpoints.Pass("ring", rx))
		for range 100 {
			if l := c.next(); strings.HasPrefix(l, "error") || l == "eos" {
				t.Fatalf("the C reader, before the Go writer was killed: %q", l)
			}
		}
		g.cmd.Process.Kill()
		for {
			l := c.next()
			if l == "eos" {
				t.Fatal("the C reader saw an end of stream from a killed writer")
			}
			if strings.HasPrefix(l, "error") {
				if !strings.HasPrefix(l, "error EPIPE") {
					t.Fatalf("the C reader: %q; want EPIPE", l)
				}
				break
			}
		}
		c.wait(false)
	})
	t.Run("go-reader", func(t *testing.T) {
		ipcchantest.CheckFDs(t)
		tx, rx, err := endpoints.RingPair[[]byte](256 + 8192)
		if err != nil {
			t.Fatal(err)
		}
		g := goRing(t, "hold", nil, endpoints.Pass("in", rx))
		g.expect("holding")
		view := viewOf(t, tx)
		c := cRing(t, bin, []string{"write", "inherit:ring", "-n", "1000000000", "-watch", strconv.Itoa(g.cmd.Process.Pid)}, endpoints.Pass("ring", tx))
		awaitSet(t, "the C writer to sleep on the full ring", wordOf(view, offWWait))
		g.cmd.Process.Kill()
		if l := c.next(); !strings.HasPrefix(l, "error EPIPE") {
			t.Fatalf("the C writer: %q; want EPIPE", l)
		}
		c.wait(false)
	})
}

// The hello on the ring (PROTOCOL.md §3), turned on at both ends: a
// matching hello lets the records through in both directions; a C reader
// refuses a Go writer of another type and a Go writer with no hello
// (EPROTO); a Go reader refuses a C writer of another type
// (ErrHandshake).
func TestCRingHello(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	const bytesHello = "bytes:27e5d96ac8cedf7b"   // []byte, codec bytes
	const stringHello = "string:704be0d8faaffc58" // string: not []byte's
	hs := ipcchan.WithHandshake(true)
	t.Run("go-to-c", func(t *testing.T) {
		for _, c := range []struct {
			name, hello string
			goHello     bool
			want        string
		}{
			{"match", bytesHello, true, ""},
			{"other-type", stringHello, true, "error EPROTO"},
			{"no-go-hello", bytesHello, false, "error EPROTO"},
		} {
			t.Run(c.name, func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				var opts []ipcchan.Option
				if c.goHello {
					opts = append(opts, hs)
				}
				r := newRing(t, "bells", 256+8192, keepTx, 1, opts...)
				p := cRing(t, bin, []string{"read", r.src, "-hello", c.hello}, r.hand...)
				ctx := ringCtx(t)
				max := r.max()
				go sendPattern(ctx, r.tx, 1, 10)
				if c.want != "" {
					if l := p.next(); !strings.HasPrefix(l, c.want) {
						t.Fatalf("the C reader: %q; want %s", l, c.want)
					}
					p.wait(false)
					return
				}
				for i := range 10 {
					tag, v := pattern(1, i, max)
					p.expect(line(tag, v))
				}
				p.expect("eos")
				p.wait(true)
			})
		}
	})
	t.Run("c-to-go", func(t *testing.T) {
		for _, c := range []struct {
			name, hello string
			ok          bool
		}{{"match", bytesHello, true}, {"other-type", stringHello, false}} {
			t.Run(c.name, func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				r := newRing(t, "bells", 256+8192, keepRx, 1, hs)
				p := cRing(t, bin, []string{"write", r.src, "-id", "3", "-n", "10", "-hello", c.hello}, r.hand...)
				ctx := ringCtx(t)
				if !c.ok {
					if v, err := r.rx.Recv(ctx); !errors.Is(err, ipcchan.ErrHandshake) {
						t.Fatalf("from a C writer of another type: %q, %v; want ErrHandshake", v, err)
					}
					return
				}
				collect(t, ctx, r.rx, r.max(), 10, 3)
				p.expect("done")
				p.wait(true)
			})
		}
	})
}

// cProgramSanitized builds c/peers/NAME.c like cProgram, with
// AddressSanitizer and UndefinedBehaviorSanitizer (an error aborts), or
// skips tb if gcc cannot build with them here.
func cProgramSanitized(tb testing.TB, name string) string {
	tb.Helper()
	plain := cProgram(tb, name) // builds (or skips) the plain one, and makes the directory
	cPrograms.mu.Lock()
	defer cPrograms.mu.Unlock()
	key := name + "+san"
	if bin, ok := cPrograms.bins[key]; ok {
		return bin
	}
	src, err := os.ReadFile(filepath.Join("c", "peers", name+".c"))
	if err != nil {
		tb.Fatal(err)
	}
	include, err := filepath.Abs("c")
	if err != nil {
		tb.Fatal(err)
	}
	probe := exec.Command("gcc", "-fsanitize=address,undefined", "-x", "c", "-o", filepath.Join(cPrograms.dir, "san-probe"), "-")
	probe.Stdin = strings.NewReader("int main(void) { return 0; }\n")
	if out, err := probe.CombinedOutput(); err != nil {
		tb.Skipf("gcc cannot build with sanitizers here (%v: %s); %s is tested unsanitized", err, out, plain)
	}
	bin := ctest.BuildIn(tb, cPrograms.dir, name+"-san", string(src), "-std=c11", "-Wextra", "-Werror", "-g",
		"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-I", include, "-lrt")
	cPrograms.bins[key] = bin
	return bin
}

// A ring's memory damaged by a hostile or broken peer, one way at a time
// (the Go reader's TestRingRefusesCorruption and more): the C reader,
// built plain and with the sanitizers, fails with a clear error (EPROTO,
// or ENOTSUP for a ring with doorbells handed over without them) when it
// opens the ring or reads the record, and never reads out of bounds or
// crashes. The control ring, undamaged, delivers its record and its end
// of stream.
func TestCRingHostile(t *testing.T) {
	bins := map[string]string{"plain": cProgram(t, "ring_peer"), "sanitized": cProgramSanitized(t, "ring_peer")}
	const size = ringHeader + 1024 // capacity 1024, largest record 504
	u32 := func(m []byte, off int, v uint32) { binary.NativeEndian.PutUint32(m[off:], v) }
	u64 := func(m []byte, off int, v uint64) { binary.NativeEndian.PutUint64(m[off:], v) }
	// record writes a record word and tag at data offset i.
	record := func(m []byte, i int, word, tag uint32) {
		u32(m, ringHeader+i, word)
		u32(m, ringHeader+i+4, tag)
	}
	cases := []struct {
		name   string
		size   int // of the mapping; 0: size
		damage func(m []byte)
		want   string // the C reader's first line
		tail   uint64 // where the reader leaves tail, if it moves it
	}{
		{"control", 0, func(m []byte) {
			record(m, 0, 5, 7)
			copy(m[ringHeader+8:], "hello")
			record(m, 16, 1<<30, 0) // the end of stream
			u64(m, offHead, 24)
		}, line(7, []byte("hello")), 24},
		{"bad magic", 0, func(m []byte) { copy(m, "NOTARING") }, "error EPROTO open", 0},
		{"version 0", 0, func(m []byte) { u32(m, offVersion, 0) }, "error EPROTO open", 0},
		{"version 2", 0, func(m []byte) { u32(m, offVersion, 2) }, "error EPROTO open", 0},
		{"header size 128", 0, func(m []byte) { u32(m, offHSize, 128) }, "error EPROTO open", 0},
		{"capacity not a power of two", 0, func(m []byte) { u64(m, offCap, 1000) }, "error EPROTO open", 0},
		{"capacity beyond the mapping", 0, func(m []byte) { u64(m, offCap, 2048) }, "error EPROTO open", 0},
		{"capacity short of the mapping", 0, func(m []byte) { u64(m, offCap, 512) }, "error EPROTO open", 0},
		{"capacity zero", 0, func(m []byte) { u64(m, offCap, 0) }, "error EPROTO open", 0},
		{"largest record over C/2-8", 0, func(m []byte) { u32(m, offMaxRec, 505) }, "error EPROTO open", 0},
		{"largest record zero", 0, func(m []byte) { u32(m, offMaxRec, 0) }, "error EPROTO open", 0},
		{"mapping too small", ringHeader + 32, nil, "error EPROTO open", 0},
		{"doorbells without them", 0, func(m []byte) { u32(m, offBells, 1) }, "error ENOTSUP open", 0},
		{"head past tail plus capacity", 0, func(m []byte) { u64(m, offHead, 1032) }, "error EPROTO receive", 0},
		{"head behind tail", 0, func(m []byte) { u64(m, offTail, 64) }, "error EPROTO receive", 0},
		{"head unaligned", 0, func(m []byte) { record(m, 0, 4, 0); u64(m, offHead, 12) }, "error EPROTO receive", 0},
		{"tail unaligned", 0, func(m []byte) { u64(m, offTail, 4); u64(m, offHead, 16) }, "error EPROTO receive", 0},
		{"record beyond the committed bytes", 0, func(m []byte) { record(m, 0, 100, 0); u64(m, offHead, 16) }, "error EPROTO receive", 0},
		{"record over the largest", 0, func(m []byte) { record(m, 0, 600, 0); u64(m, offHead, 608) }, "error EPROTO receive", 0},
		{"record length with every bit", 0, func(m []byte) { record(m, 0, 1<<30-1, 0); u64(m, offHead, 1024) }, "error EPROTO receive", 0},
		{"record past the data area", 0, func(m []byte) {
			u64(m, offTail, 1016)
			record(m, 1016, 5, 0)
			u64(m, offHead, 1032)
		}, "error EPROTO receive", 0},
		{"pad in the wrong place", 0, func(m []byte) { record(m, 0, 1<<31, 0); u64(m, offHead, 16) }, "error EPROTO receive", 0},
		{"pad then a bad record", 0, func(m []byte) {
			u64(m, offTail, 1008)
			record(m, 1008, 1<<31, 0) // a pad of 16, rightly placed
			record(m, 0, 900, 0)
			u64(m, offHead, 1040)
		}, "error EPROTO receive", 1024},
	}
	for _, build := range []string{"plain", "sanitized"} {
		for _, c := range cases {
			t.Run(build+"/"+c.name, func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				size := size
				if c.size != 0 {
					size = c.size
				}
				m, err := endpoints.NewMemfd("hostile", size)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				if c.size == 0 {
					if err := endpoints.FormatRing(m); err != nil {
						t.Fatal(err)
					}
				} else {
					copy(m.Bytes(), "IPCCRING")
					u32(m.Bytes(), offVersion, 1)
					u32(m.Bytes(), offHSize, ringHeader)
				}
				if c.damage != nil {
					c.damage(m.Bytes())
				}
				before := append([]byte(nil), m.Bytes()[:ringHeader]...)
				f, err := m.File()
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bins[build], "read", "inherit:ring", "-timeout", "2000")
				cmd.ExtraFiles = []*os.File{f}
				cmd.Env = append(os.Environ(), "IPCCHAN_FILES=ring=3")
				var stderr strings.Builder
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				f.Close()
				first, _, _ := strings.Cut(string(out), "\n")
				if !strings.HasPrefix(first, c.want) {
					t.Fatalf("the C reader printed %q (%v, stderr %q); want %q", out, err, stderr.String(), c.want)
				}
				// The reader followed no bad offset: tail stays where it was,
				// or where the records before the damage took it.
				wantTail := c.tail
				if wantTail == 0 && c.size == 0 {
					wantTail = binary.NativeEndian.Uint64(before[offTail:])
				}
				if got := binary.NativeEndian.Uint64(m.Bytes()[offTail:]); c.size == 0 && got != wantTail {
					t.Fatalf("the C reader left tail at %d; want %d", got, wantTail)
				}
				if c.name == "control" {
					if err != nil || string(out) != c.want+"\neos\n" {
						t.Fatalf("the C reader of the control ring: %q, %v", out, err)
					}
				} else if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 1 || stderr.Len() != 0 {
					t.Fatalf("the C reader: %v, stderr %q; want exit status 1 and nothing on stderr", err, stderr.String())
				}
			})
		}
	}
}

// A C writer on a ring whose head a hostile peer set unaligned, or beyond
// tail plus capacity, fails with EPROTO and writes nothing out of bounds.
func TestCRingHostileToWriter(t *testing.T) {
	bin := cProgramSanitized(t, "ring_peer")
	for _, c := range []struct {
		name       string
		head, tail uint64
	}{{"head unaligned", 12, 0}, {"head past tail plus capacity", 2048, 0}, {"tail unaligned", 1024, 4}} {
		t.Run(c.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			m, err := endpoints.NewMemfd("hostile", ringHeader+1024)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if err := endpoints.FormatRing(m); err != nil {
				t.Fatal(err)
			}
			binary.NativeEndian.PutUint64(m.Bytes()[offHead:], c.head)
			binary.NativeEndian.PutUint64(m.Bytes()[offTail:], c.tail)
			f, err := m.File()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "write", "inherit:ring", "-n", "1", "-id", "1", "-timeout", "2000")
			cmd.ExtraFiles = []*os.File{f}
			cmd.Env = append(os.Environ(), "IPCCHAN_FILES=ring=3")
			cmd.Stderr = os.Stderr
			out, _ := cmd.Output()
			if !strings.HasPrefix(string(out), "error EPROTO send") {
				t.Fatalf("the C writer printed %q; want EPROTO", out)
			}
		})
	}
}

// The other named rings FormatRing makes, which a C peer opens by name
// with no doorbells: a file and a SysV segment, in both directions.
func TestCRingNamedMappings(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	kinds := []struct {
		name string
		make func(t *testing.T) (*endpoints.Mapping, string)
	}{
		{"file", func(t *testing.T) (*endpoints.Mapping, string) {
			path := filepath.Join(t.TempDir(), "ring")
			m, err := endpoints.CreateFileMapping(path, ringHeader+4096)
			if err != nil {
				t.Fatal(err)
			}
			return m, "file:" + path
		}},
		{"sysv", func(t *testing.T) (*endpoints.Mapping, string) {
			m, _, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.Mapping, error) {
				return endpoints.CreateSysVShm(k, ringHeader+4096)
			})
			if err != nil {
				t.Fatal(err)
			}
			return m, "sysv:" + strconv.Itoa(m.ID())
		}},
	}
	for _, kind := range kinds {
		for _, goWrites := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/go-writes=%v", kind.name, goWrites), func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				m, src := kind.make(t)
				defer m.Close()
				defer m.Remove()
				if err := endpoints.FormatRing(m); err != nil {
					t.Fatal(err)
				}
				ctx := ringCtx(t)
				max := int(binary.NativeEndian.Uint32(m.Bytes()[offMaxRec:]))
				const n = 500
				if goWrites {
					tx, err := endpoints.RingSender[[]byte](m)
					if err != nil {
						t.Fatal(err)
					}
					defer tx.Close()
					c := cRing(t, bin, []string{"read", src})
					go sendPattern(ctx, tx, 1, n)
					for i := range n {
						tag, p := pattern(1, i, max)
						c.expect(line(tag, p))
					}
					c.expect("eos")
					c.wait(true)
					return
				}
				rx, err := endpoints.RingReceiver[[]byte](m)
				if err != nil {
					t.Fatal(err)
				}
				defer rx.Close()
				c := cRing(t, bin, []string{"write", src, "-id", "2", "-n", strconv.Itoa(n)})
				collect(t, ctx, rx, max, n, 2)
				c.expect("done")
				c.wait(true)
			})
		}
	}
}

// A C reader with a buffer shorter than a record skips that record with
// EMSGSIZE, saying its length, and goes on with the next (as a Go receiver
// discards a message over its limit); a receive on an empty ring with a
// timeout ends with ETIMEDOUT.
func TestCRingRecvLimits(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	ipcchantest.CheckFDs(t)
	r := newRing(t, "bells", 256+8192, keepTx, 1)
	c := cRing(t, bin, []string{"read", r.src, "-buf", "50", "-timeout", "100"}, r.hand...)
	if l := c.next(); !strings.HasPrefix(l, "error ETIMEDOUT receive") {
		t.Fatalf("the C reader of an empty ring: %q; want ETIMEDOUT", l)
	}
	c.wait(false)

	r = newRing(t, "bells", 256+8192, keepTx, 1)
	c = cRing(t, bin, []string{"read", r.src, "-buf", "50"}, r.hand...)
	ctx := ringCtx(t)
	for i, n := range []int{50, 51, 0, 1000, 7} {
		if err := r.tx.SendTag(ctx, uint32(i), make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	r.tx.Close()
	for i, want := range []string{line(0, make([]byte, 50)), "skipped 51", line(2, nil), "skipped 1000", line(4, make([]byte, 7)), "eos"} {
		if got := c.next(); got != want {
			t.Fatalf("line %d of the C reader: %q; want %q", i, got, want)
		}
	}
	c.wait(true)
}

// A non-blocking C send (timeout 0) that finds the lock held by a dead
// writer takes it back and writes, rather than failing with EAGAIN for as
// long as the dead holder stays in the lock word (as Go's TrySend does).
func TestCRingDeadLockHolderTrySend(t *testing.T) {
	bin := cProgram(t, "ring_peer")
	for _, kind := range ringKinds {
		t.Run(kind, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			r := newRing(t, kind, 256+8192, keepBoth, 2)
			ctx := ringCtx(t)
			holder := cRing(t, bin, []string{"holdlock", r.src}, r.hand...)
			holder.expect("locked")
			if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// A send that tries once must find the holder dead, not dying:
			// the signal is delivered after kill(2) returns.
			awaitZombie(t, holder.cmd.Process.Pid)
			const n = 20 // records of at most 100 bytes: the ring holds them all
			c := cRing(t, bin, []string{"write", r.src, "-id", "7", "-n", strconv.Itoa(n), "-max", "100", "-timeout", "0"}, r.hand...)
			c.expect("done")
			c.wait(true)
			if err := r.tx.Close(); err != nil { // the other sender: nothing
				t.Fatal(err)
			}
			collect(t, ctx, r.rx, 100, n, 7)
		})
	}
}

// awaitZombie waits until process pid has exited and is not yet reaped
// (state Z in /proc/PID/stat), or fails t after 10 s.
func awaitZombie(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatalf("process %d: %v (reaped already?)", pid, err)
		}
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d is not a zombie after 10 s: %s", pid, stat)
		}
		time.Sleep(time.Millisecond)
	}
}
