package clients_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// packetCase makes, for one message socket, the Go end and the C peer's
// arguments, in either direction.
type packetCase struct {
	name   string
	n, max int
	goToC  func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func())
	cToGo  func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func())
}

func packetCases(opts ...ipcchan.Option) []packetCase {
	gram := func(network string, n, max int) packetCase {
		listen := func(t *testing.T, ctx context.Context) (*ipcchan.Receiver[[]byte], string) {
			addr := "127.0.0.1:0"
			if network == "unixgram" {
				addr = filepath.Join(t.TempDir(), "g")
			}
			rx, addr, err := endpoints.ListenPacket[[]byte](ctx, network, addr, opts...)
			if err != nil {
				t.Fatal(err)
			}
			return rx, addr
		}
		return packetCase{name: network, n: n, max: max,
			goToC: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func()) {
				rx, addr := listen(t, ctx)
				// Dial first: the receiver handed over no longer answers for its name here.
				tx, err := endpoints.DialPacket[[]byte](ctx, network, addr, opts...)
				if err != nil {
					t.Fatal(err)
				}
				r := startC(t, bin, append([]string{"recv", "packet"}, args...), endpoints.Pass("ch", rx))
				return tx, r, func() { tx.Close() }
			},
			cToGo: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func()) {
				rx, addr := listen(t, ctx)
				tx, err := endpoints.DialPacket[[]byte](ctx, network, addr, opts...)
				if err != nil {
					t.Fatal(err)
				}
				r := startC(t, bin, append([]string{"send", "packet"}, args...), endpoints.Pass("ch", tx))
				return rx, r, func() { rx.Close() }
			}}
	}
	seqpacket := packetCase{name: "seqpacket", n: 300, max: 60000,
		goToC: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Sender[[]byte], *cPeerRun, func()) {
			path := filepath.Join(t.TempDir(), "p")
			l, err := endpoints.Listen[[]byte, []byte](ctx, "unixpacket", path, opts...)
			if err != nil {
				t.Fatal(err)
			}
			r := startC(t, bin, append([]string{"recv", "seqpacket:" + path}, args...))
			c, err := l.Accept(ctx)
			l.Close()
			if err != nil {
				t.Fatal(err)
			}
			return c.Sender(), r, func() { c.Close() }
		},
		cToGo: func(t *testing.T, ctx context.Context, bin string, args []string) (*ipcchan.Receiver[[]byte], *cPeerRun, func()) {
			path := filepath.Join(t.TempDir(), "p")
			l, err := endpoints.Listen[[]byte, []byte](ctx, "unixpacket", path, opts...)
			if err != nil {
				t.Fatal(err)
			}
			r := startC(t, bin, append([]string{"send", "seqpacket:" + path}, args...))
			c, err := l.Accept(ctx)
			l.Close()
			if err != nil {
				t.Fatal(err)
			}
			return c.Receiver(), r, func() { c.Close() }
		}}
	// UDP loses datagrams when a receiver falls behind: few and small.
	return []packetCase{gram("unixgram", 300, 60000), seqpacket, gram("udp", 40, 1000)}
}

// Go senders to C receivers and back on unixgram, seqpacket and UDP
// sockets: every message whole with its tag, in order, then the end
// (the unixgram and UDP marker, the seqpacket close); then the same with
// the hello on at both ends.
func TestCPackets(t *testing.T) {
	bin := cProgram(t, "c_peer")
	for _, hs := range []bool{false, true} {
		var opts []ipcchan.Option
		var cargs []string
		if hs {
			opts = []ipcchan.Option{ipcchan.WithHandshake(true)}
			cargs = []string{"-hs"}
		}
		for _, tc := range packetCases(opts...) {
			t.Run(fmt.Sprintf("%s/hello=%v", tc.name, hs), func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				ctx := testCtx(t)
				t.Run("GoToC", func(t *testing.T) {
					tx, r, done := tc.goToC(t, ctx, bin, append([]string{"-cap", fmt.Sprint(tc.max)}, cargs...))
					goSendPattern(t, tc.n, tc.max, "seq", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
					done()
					got, err := r.wait()
					if err != nil {
						t.Errorf("C receiver: %v", err)
					}
					checkLines(t, "C received", got, append(cWant(tc.n, tc.max, "seq"), "end"))
				})
				t.Run("CToGo", func(t *testing.T) {
					rx, r, done := tc.cToGo(t, ctx, bin, append([]string{"-n", fmt.Sprint(tc.n), "-max", fmt.Sprint(tc.max), "-tag", "seq"}, cargs...))
					defer done()
					got, err := goRecvAll(t, ctx, rx)
					if err != io.EOF {
						t.Errorf("Go receiver ended with %v, want io.EOF", err)
					}
					checkLines(t, "Go received", got, cWant(tc.n, tc.max, "seq"))
					if out, err := r.wait(); err != nil {
						t.Errorf("C sender: %v %q", err, out)
					}
				})
			})
		}
	}
}

// With the hello on at both ends, a datagram receiver refuses a sender of
// another type: the C receiver with EPROTO, the Go one with ErrHandshake.
func TestCPacketHandshakeRefused(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	tc := packetCases(ipcchan.WithHandshake(true))[0]
	tx, r, done := tc.goToC(t, ctx, bin, []string{"-hs", "-codec", "string", "-desc", "string"})
	tx.Send(ctx, []byte("x"))
	done()
	if out, err := r.wait(); err == nil || strings.Join(out, ",") != "error EPROTO 0 0" {
		t.Errorf("C receiver: %v %q, want error EPROTO", err, out)
	}
	rx, r, done := tc.cToGo(t, ctx, bin, []string{"-hs", "-n", "3", "-codec", "string", "-desc", "string"})
	defer done()
	if _, err := rx.Recv(ctx); !errors.Is(err, ipcchan.ErrHandshake) {
		t.Errorf("Go receiver: %v, want ErrHandshake", err)
	}
	r.wait()
}

// With the hello on, a C datagram receiver of two Go senders whose buffer
// is smaller than a hello checks the second sender's hello too (it reads
// hellos into a buffer of its own) and delivers both senders' values.
func TestCPacketHelloSmallBuffer(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	rx, addr, err := endpoints.ListenPacket[[]byte](ctx, "unixgram", filepath.Join(t.TempDir(), "g"), ipcchan.WithHandshake(true))
	if err != nil {
		t.Fatal(err)
	}
	var txs []*ipcchan.Sender[[]byte]
	for range 2 {
		tx, err := endpoints.DialPacket[[]byte](ctx, "unixgram", addr, ipcchan.WithHandshake(true))
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	r := startC(t, bin, []string{"recv", "packet", "-hs", "-cap", "16", "-senders", "2"}, endpoints.Pass("ch", rx))
	var want []string
	for i, tx := range txs {
		goSendPattern(t, 10, 16, fmt.Sprint(i+1), func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
		tx.Close()
		want = append(want, cWant(10, 16, fmt.Sprint(i+1))...)
	}
	got, err := r.wait()
	if err != nil {
		t.Errorf("C receiver: %v", err)
	}
	checkLines(t, "C received", got, append(want, "end"))
}

// mqName makes a POSIX queue for the test and removes it after.
func mqName(t *testing.T, attr endpoints.MQAttr) string {
	t.Helper()
	name := endpoints.ObjectName("c-" + t.Name())
	if err := endpoints.CreateMQ(name, attr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { endpoints.RemoveMQ(name) })
	return name
}

// sysvQueue makes a SysV queue for the test and removes it after.
func sysvQueue(t *testing.T) *endpoints.SysVQueue {
	t.Helper()
	q, _, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SysVQueue, error) {
		return endpoints.CreateSysVQueue(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Remove() })
	return q
}

// POSIX queues both ways: 300 messages of 0 to 8192 bytes (the queue's
// message size) in order with their priority, the end-of-stream marker;
// priorities come highest first, the marker after its sender's messages;
// a receiver configured for two senders ends after both markers.
func TestCPosixQueues(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	const n, max = 300, 8192
	attr := endpoints.MQAttr{MaxMsgs: 10, MsgSize: max}
	t.Run("GoToC", func(t *testing.T) {
		name := mqName(t, attr)
		r := startC(t, bin, []string{"recv", "mq:" + name, "-cap", fmt.Sprint(max)})
		tx, err := endpoints.OpenMQSender[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		goSendPattern(t, n, max, "7", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
		tx.Close()
		got, err := r.wait()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", got, append(cWant(n, max, "7"), "end"))
	})
	t.Run("CToGo", func(t *testing.T) {
		name := mqName(t, attr)
		rx, err := endpoints.OpenMQReceiver[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		r := startC(t, bin, []string{"send", "mq:" + name, "-n", fmt.Sprint(n), "-max", fmt.Sprint(max), "-tag", "7"})
		got, err := goRecvAll(t, ctx, rx)
		if err != io.EOF {
			t.Errorf("Go receiver: %v, want io.EOF", err)
		}
		checkLines(t, "Go received", got, cWant(n, max, "7"))
		r.wait()
	})
	// Nine messages of priorities 0 to 8, all queued before the receiver
	// starts: it takes them highest first, and the marker last.
	reversed := func() []string {
		want := cWant(9, 100, "seq")
		for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
			want[i], want[j] = want[j], want[i]
		}
		return want
	}
	t.Run("PrioritiesGoToC", func(t *testing.T) {
		name := mqName(t, attr)
		tx, err := endpoints.OpenMQSender[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		goSendPattern(t, 9, 100, "seq", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
		tx.Close()
		got, err := startC(t, bin, []string{"recv", "mq:" + name}).wait()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", got, append(reversed(), "end"))
	})
	t.Run("PrioritiesCToGo", func(t *testing.T) {
		name := mqName(t, attr)
		if out, err := startC(t, bin, []string{"send", "mq:" + name, "-n", "9", "-max", "100", "-tag", "seq"}).wait(); err != nil {
			t.Fatalf("C sender: %v %q", err, out)
		}
		rx, err := endpoints.OpenMQReceiver[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		got, err := goRecvAll(t, ctx, rx)
		if err != io.EOF {
			t.Errorf("Go receiver: %v", err)
		}
		checkLines(t, "Go received", got, reversed())
	})
	t.Run("TwoSenders", func(t *testing.T) {
		name := mqName(t, attr)
		rx, err := endpoints.OpenMQReceiver[[]byte](name, ipcchan.WithSenders(2))
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		for w := range 2 {
			startC(t, bin, []string{"send", "mq:" + name, "-n", "50", "-max", "500", "-tag", fmt.Sprint(w + 1)})
		}
		got, err := goRecvAll(t, ctx, rx)
		if err != io.EOF {
			t.Errorf("Go receiver: %v", err)
		}
		if len(got) != 100 {
			t.Errorf("Go received %d messages from two C senders of 50", len(got))
		}
		// Two Go senders to a C receiver of two.
		r := startC(t, bin, []string{"recv", "mq:" + name, "-senders", "2"})
		for w := range 2 {
			tx, err := endpoints.OpenMQSender[[]byte](name)
			if err != nil {
				t.Fatal(err)
			}
			goSendPattern(t, 20, 100, fmt.Sprint(w+1), func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
			tx.Close()
		}
		out, err := r.wait()
		if err != nil || len(out) != 41 || out[40] != "end" {
			t.Errorf("C receiver of two Go senders: %v, %d lines ending %q", err, len(out), out[len(out)-1:])
		}
	})
}

// SysV queues both ways, by identifier and inherited through
// IPCCHAN_FILES: 300 messages of 0 to msgmax bytes with their types, the
// marker with the sender's type; a type above 2^31 from C reaches Go whole.
func TestCSysVQueues(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	const n, max = 300, 8192
	t.Run("GoToC", func(t *testing.T) {
		q := sysvQueue(t)
		r := startC(t, bin, []string{"recv", fmt.Sprintf("sysvid:%d:0", q.ID()), "-cap", fmt.Sprint(max)})
		tx, err := endpoints.SysVSender[[]byte](q, ipcchan.WithTag(1))
		if err != nil {
			t.Fatal(err)
		}
		goSendPattern(t, n, max, "seq1", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
		tx.Close()
		got, err := r.wait()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", got, append(cWant(n, max, "seq1"), "end"))
	})
	t.Run("CToGo", func(t *testing.T) {
		q := sysvQueue(t)
		rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		r := startC(t, bin, []string{"send", fmt.Sprintf("sysvid:%d:1", q.ID()), "-n", fmt.Sprint(n), "-max", fmt.Sprint(max), "-tag", "seq1"})
		got, err := goRecvAll(t, ctx, rx)
		if err != io.EOF {
			t.Errorf("Go receiver: %v, want io.EOF", err)
		}
		checkLines(t, "Go received", got, cWant(n, max, "seq1"))
		r.wait()
	})
	t.Run("Inherited", func(t *testing.T) {
		// A Go receiver of type 2 handed to C: C takes only type 2.
		q := sysvQueue(t)
		rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{Type: 2})
		if err != nil {
			t.Fatal(err)
		}
		r := startC(t, bin, []string{"recv", "sysv"}, endpoints.Pass("ch", rx))
		other, _ := endpoints.SysVSender[[]byte](q, ipcchan.WithTag(3))
		tx, _ := endpoints.SysVSender[[]byte](q, ipcchan.WithTag(2))
		for i := range 10 {
			other.Send(ctx, []byte("not for C"))
			tx.Send(ctx, cPayload(i, 10, 100))
		}
		tx.Close()
		got, err := r.wait()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", got, append(cWant(10, 100, "2"), "end"))
		other.Close()
		// MSG_EXCEPT, and a negative type (the lowest type up to 2 first),
		// as the Go receivers handed over select them.
		for _, sel := range []endpoints.MsgSelect{{Type: 3, Except: true}, {Type: -2}} {
			rx, err := endpoints.SysVReceiver[[]byte](q, sel)
			if err != nil {
				t.Fatal(err)
			}
			r := startC(t, bin, []string{"recv", "sysv", "-timeout", "200"}, endpoints.Pass("ch", rx))
			for _, typ := range []int64{3, 4, 2, 1} {
				if err := q.Send(ctx, typ, []byte{byte(typ)}); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := r.wait()
			want := []string{cLine(4, []byte{4}), cLine(2, []byte{2}), cLine(1, []byte{1}), "error ETIMEDOUT 0 0"}
			if sel.Type < 0 {
				want = []string{cLine(1, []byte{1}), cLine(2, []byte{2}), "error ETIMEDOUT 0 0"}
			}
			checkLines(t, fmt.Sprintf("C receiver of %+v", sel), got, want)
			for { // empty the queue for the next selection
				if st, err := q.Stats(); err != nil || st.Messages == 0 {
					break
				}
				if _, _, err := q.Receive(ctx, endpoints.MsgSelect{}, make([]byte, 16)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if strconv.IntSize == 32 {
			return // a C long holds no type above 2^31 - 1
		}
		// A Go sender of type 3000000000 (above 2^31) handed to C: its
		// messages and marker carry that type to a Go receiver.
		rx3, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{Type: 3000000000})
		if err != nil {
			t.Fatal(err)
		}
		defer rx3.Close()
		tx3, err := endpoints.SysVSender[[]byte](q, ipcchan.WithTag(3000000000))
		if err != nil {
			t.Fatal(err)
		}
		r = startC(t, bin, []string{"send", "sysv", "-n", "5", "-max", "100", "-tag", "0"}, endpoints.Pass("ch", tx3))
		got, err = goRecvAll(t, ctx, rx3)
		if err != io.EOF {
			t.Errorf("Go receiver of type 3000000000: %v", err)
		}
		checkLines(t, "Go received", got, cWant(5, 100, "3000000000"))
		r.wait()
	})
}

// Values that look like the queues' marker or escape travel as values
// both ways, on POSIX and SysV queues: the exact marker bytes, the prefix
// with 0x02, the prefix alone. One whose escaped form no longer fits is
// refused with EMSGSIZE by the C sender, never truncated.
func TestCQueueLookalikes(t *testing.T) {
	bin := cProgram(t, "c_lookalike")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	want := []string{
		cLine(0, []byte(queueEOS)), cLine(0, []byte(queueEOS[:15]+"\x02")), cLine(0, []byte(queueEOS[:15]+"\x02ab")),
		cLine(0, []byte(queueEOS[:15])), cLine(0, []byte(queueEOS+"tail")),
	}
	t.Run("posix", func(t *testing.T) {
		name := mqName(t, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 64})
		out, err := startC(t, bin, []string{"mq:" + name}).wait()
		if err != nil || strings.Join(out, ",") != "refused EMSGSIZE,sent" {
			t.Fatalf("C sender: %v %q", err, out)
		}
		rx, err := endpoints.OpenMQReceiver[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		got, err := goRecvAll(t, ctx, rx)
		if err != io.EOF {
			t.Errorf("Go receiver: %v", err)
		}
		checkLines(t, "Go received", got, want)
		// And back: Go sends the same values, C receives them as values.
		tx, err := endpoints.OpenMQSender[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range lookalikes {
			if err := tx.Send(ctx, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		tx.Close()
		out, err = startC(t, cProgram(t, "c_peer"), []string{"recv", "mq:" + name}).wait()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", out, append(want, "end"))
	})
	t.Run("sysv", func(t *testing.T) {
		q := sysvQueue(t)
		out, err := startC(t, bin, []string{fmt.Sprintf("sysvid:%d:1", q.ID())}).wait()
		if err != nil || strings.Join(out, ",") != "refused EMSGSIZE,sent" {
			t.Fatalf("C sender: %v %q", err, out)
		}
		rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		got, err := goRecvAll(t, ctx, rx)
		if err != io.EOF {
			t.Errorf("Go receiver: %v", err)
		}
		wantTyped := make([]string, len(want))
		for i, v := range lookalikes {
			wantTyped[i] = cLine(1, []byte(v))
		}
		checkLines(t, "Go received", got, wantTyped)
		tx, _ := endpoints.SysVSender[[]byte](q, ipcchan.WithTag(1))
		for _, v := range lookalikes {
			if err := tx.Send(ctx, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
		tx.Close()
		out, err = startC(t, cProgram(t, "c_peer"), []string{"recv", fmt.Sprintf("sysvid:%d:0", q.ID())}).wait()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", out, append(wantTyped, "end"))
	})
}

// queueEOS is PROTOCOL.md §7's end-of-stream marker.
const queueEOS = "\x00IPCCHAN-EOS\x00\x00\x00\x01"

// lookalikes are the values c_lookalike.c sends, in order.
var lookalikes = []string{queueEOS, queueEOS[:15] + "\x02", queueEOS[:15] + "\x02ab", queueEOS[:15], queueEOS + "tail"}

// Killed senders on queues and datagrams, which have no kernel end of
// stream: a C sender killed after 5 messages leaves a Go receiver that
// watches it (WatchPeer) with the 5 and then ErrPeerGone; a Go sender
// killed after 5 leaves a C receiver that watches it (its peer pidfd) with
// the 5 and then ESRCH. Neither waits for ever nor sees a clean end.
func TestCQueueKilledPeer(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	// Each case makes a Go sender (for the Go child) or a Go receiver, and
	// says how the C peer finds its end: by name, or handed over as "ch".
	type side struct {
		tx     *ipcchan.Sender[[]byte]
		rx     *ipcchan.Receiver[[]byte]
		tr     string
		handed bool
	}
	cases := map[string]func(t *testing.T, goSends bool) side{
		"posix": func(t *testing.T, goSends bool) side {
			name := mqName(t, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 1024})
			var s side
			var err error
			if goSends {
				s.tx, err = endpoints.OpenMQSender[[]byte](name)
			} else {
				s.rx, err = endpoints.OpenMQReceiver[[]byte](name)
			}
			if err != nil {
				t.Fatal(err)
			}
			s.tr = "mq:" + name
			return s
		},
		"sysv": func(t *testing.T, goSends bool) side {
			q := sysvQueue(t)
			var s side
			var err error
			if goSends {
				s.tx, err = endpoints.SysVSender[[]byte](q, ipcchan.WithTag(1))
			} else {
				s.rx, err = endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{})
			}
			if err != nil {
				t.Fatal(err)
			}
			s.tr = fmt.Sprintf("sysvid:%d:1", q.ID())
			return s
		},
		"unixgram": func(t *testing.T, goSends bool) side {
			rx, addr, err := endpoints.ListenPacket[[]byte](ctx, "unixgram", filepath.Join(t.TempDir(), "g"))
			if err != nil {
				t.Fatal(err)
			}
			tx, err := endpoints.DialPacket[[]byte](ctx, "unixgram", addr)
			if err != nil {
				t.Fatal(err)
			}
			return side{tx, rx, "packet", true}
		},
	}
	for name, mk := range cases {
		t.Run(name+"/CSender", func(t *testing.T) {
			s := mk(t, false)
			defer s.rx.Close()
			var handed []endpoints.Handed
			if s.handed {
				handed = append(handed, endpoints.Pass("ch", s.tx))
			}
			r := startC(t, bin, []string{"send", s.tr, "-n", "100", "-after", "5", "-tag", "1"}, handed...)
			if l := r.line(); l != "ready" {
				t.Fatalf("C sender: %q", l)
			}
			if err := s.rx.WatchPeer(r.cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			r.kill()
			got, err := goRecvAll(t, ctx, s.rx)
			if !errors.Is(err, ipcchan.ErrPeerGone) {
				t.Errorf("Go receiver after the C sender was killed: %v, want ErrPeerGone", err)
			}
			checkLines(t, "Go received", got, cWant(100, 1000, "1")[:5])
		})
		t.Run(name+"/GoSender", func(t *testing.T) {
			s := mk(t, true)
			var handed []endpoints.Handed
			if s.handed {
				handed = append(handed, endpoints.Pass("ch", s.rx))
			}
			child := startGoChild(t, "queue-stop", endpoints.Pass("out", s.tx))
			if l := child.line(); l != "ready" {
				t.Fatalf("Go child: %q", l)
			}
			r := startC(t, bin, []string{"recv", s.tr, "-watch", fmt.Sprint(child.cmd.Process.Pid), "-timeout", "-1"}, handed...)
			var got []string
			for range 5 {
				got = append(got, r.line())
			}
			checkLines(t, "C received", got, cWant(100, 1000, "1")[:5])
			child.kill()
			out, err := r.wait()
			if err == nil || len(out) != 1 || !strings.HasPrefix(out[0], "error ESRCH") {
				t.Errorf("C receiver after the Go sender was killed: %v %q, want error ESRCH", err, out)
			}
		})
	}
}

// A C receiver with a timeout and nothing to receive fails with ETIMEDOUT
// on every transport that has no end of its own.
func TestCReceiveTimeout(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	name := mqName(t, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 64})
	q := sysvQueue(t)
	tx, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	for _, c := range []struct {
		args []string
		ends []endpoints.Handed
	}{
		{[]string{"recv", "mq:" + name}, nil},
		{[]string{"recv", fmt.Sprintf("sysvid:%d:0", q.ID())}, nil},
		{[]string{"recv", "stream"}, []endpoints.Handed{endpoints.Pass("ch", rx)}},
	} {
		out, err := startC(t, bin, append(c.args, "-timeout", "50"), c.ends...).wait()
		if err == nil || strings.Join(out, ",") != "error ETIMEDOUT 0 0" {
			t.Errorf("%s: %v %q, want error ETIMEDOUT", c.args[1], err, out)
		}
	}
}

// A C SysV receiver made while msgmax was smaller meets a longer message:
// it takes it off the queue and reports EMSGSIZE, and the next message and
// the end still arrive (msgrcv's E2BIG would otherwise leave the message
// in the way of every later receive). The C program runs in an IPC
// namespace of its own, where changing msgmax touches nothing else.
func TestCSysVLongerThanMsgmaxAtInit(t *testing.T) {
	out, err := exec.Command(cProgram(t, "c_sysv_msgmax")).Output()
	if err != nil {
		t.Fatalf("c_sysv_msgmax: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	if strings.HasPrefix(got, "skip: ") {
		t.Skip(got)
	}
	if want := "-1 EMSGSIZE 1\n1 1 after\n0 0 "; got != strings.TrimSpace(want) {
		t.Errorf("C receiver:\n%s\nwant\n%s", got, want)
	}
}

// A C peer whose blocking calls signals keep interrupting (a SIGUSR1
// handler without SA_RESTART, the signal sent as fast as the test can):
// every read, write, poll, mq_send/mq_receive and msgsnd/msgrcv that fails
// with EINTR is retried, and every message arrives whole and in order.
func TestCInterruptedCalls(t *testing.T) {
	bin := cProgram(t, "c_peer")
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	const n, max = 300, 8192
	storm := func(r *cPeerRun) func() {
		if l := r.line(); l != "signals" { // SIGUSR1 before the handler would kill it
			t.Fatalf("C peer: %q", l)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					r.cmd.Process.Signal(syscall.SIGUSR1)
					time.Sleep(50 * time.Microsecond) // a storm, not a busy loop: the machine is shared
				}
			}
		}()
		return func() { close(stop); <-done }
	}
	t.Run("pipe", func(t *testing.T) {
		tx, rx, err := endpoints.PipePair[[]byte]()
		if err != nil {
			t.Fatal(err)
		}
		r := startC(t, bin, []string{"recv", "stream", "-sigs", "-timeout", "-1", "-cap", fmt.Sprint(max)}, endpoints.Pass("ch", rx))
		stop := storm(r)
		goSendPattern(t, n, max, "seq", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
		tx.Close()
		got, err := r.wait()
		stop()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", got, append(cWant(n, max, "seq"), "end"))

		tx, rx, err = endpoints.PipePair[[]byte]()
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		r = startC(t, bin, []string{"send", "stream", "-sigs", "-n", fmt.Sprint(n), "-max", "100000", "-tag", "seq"}, endpoints.Pass("ch", tx))
		stop = storm(r)
		got, err = goRecvAll(t, ctx, rx)
		stop()
		if err != io.EOF {
			t.Errorf("Go receiver: %v", err)
		}
		checkLines(t, "Go received", got, cWant(n, 100000, "seq"))
		r.wait()
	})
	t.Run("posix", func(t *testing.T) {
		name := mqName(t, endpoints.MQAttr{MaxMsgs: 2, MsgSize: max})
		r := startC(t, bin, []string{"recv", "mq:" + name, "-sigs", "-timeout", "-1", "-cap", fmt.Sprint(max)})
		stop := storm(r)
		tx, err := endpoints.OpenMQSender[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		goSendPattern(t, n, max, "7", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
		tx.Close()
		got, err := r.wait()
		stop()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", got, append(cWant(n, max, "7"), "end"))

		rx, err := endpoints.OpenMQReceiver[[]byte](name)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		r = startC(t, bin, []string{"send", "mq:" + name, "-sigs", "-n", fmt.Sprint(n), "-max", fmt.Sprint(max), "-tag", "7"})
		stop = storm(r)
		got, err = goRecvAll(t, ctx, rx)
		stop()
		if err != io.EOF {
			t.Errorf("Go receiver: %v", err)
		}
		checkLines(t, "Go received", got, cWant(n, max, "7"))
		r.wait()
	})
	t.Run("sysv", func(t *testing.T) {
		q := sysvQueue(t)
		r := startC(t, bin, []string{"recv", fmt.Sprintf("sysvid:%d:0", q.ID()), "-sigs", "-timeout", "-1", "-cap", fmt.Sprint(max)})
		stop := storm(r)
		tx, err := endpoints.SysVSender[[]byte](q, ipcchan.WithTag(1))
		if err != nil {
			t.Fatal(err)
		}
		goSendPattern(t, n, max, "seq1", func(tag uint64, p []byte) error { return tx.SendTag(ctx, uint32(tag), p) })
		tx.Close()
		got, err := r.wait()
		stop()
		if err != nil {
			t.Errorf("C receiver: %v", err)
		}
		checkLines(t, "C received", got, append(cWant(n, max, "seq1"), "end"))

		rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		r = startC(t, bin, []string{"send", fmt.Sprintf("sysvid:%d:1", q.ID()), "-sigs", "-n", fmt.Sprint(n), "-max", fmt.Sprint(max), "-tag", "seq1"})
		stop = storm(r)
		got, err = goRecvAll(t, ctx, rx)
		stop()
		if err != io.EOF {
			t.Errorf("Go receiver: %v", err)
		}
		checkLines(t, "Go received", got, cWant(n, max, "seq1"))
		r.wait()
	})
}

// Receivers given non-blocking descriptors (a SOCK_NONBLOCK socket, an
// O_NONBLOCK POSIX queue, as event loops and Go programs open them) wait as
// their timeout says: a packet receive without a timeout spun on recvmsg's
// EAGAIN at full speed, and a queue receive returned EAGAIN, with no
// timeout or when another reader took the message poll had announced.
// c_nonblock makes every message arrive at the receive's own poll, so no
// timing is involved.
func TestCNonblockingDescriptors(t *testing.T) {
	bin := cProgram(t, "c_nonblock")
	out, err := exec.Command(bin).CombinedOutput()
	if err != nil {
		t.Fatalf("c_nonblock: %v\n%s", err, out)
	}
	want := "seqpacket 1 7 late\nunixgram 1 7 late\nmq-blocking 1 3 late\nmq-timeout-taken 1 3 late"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("C receivers on non-blocking descriptors:\n%s\nwant\n%s", got, want)
	}
}
