package endpoints_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// inPlaceStruct is a small C struct for the CStruct codec: fixed size,
// and a char[8] that a longer string cannot be encoded into.
type inPlaceStruct struct {
	Seq  uint32
	X, Y float64
	Name string `c:"char[8]"`
}

// spyCodec is the bytes codec recording whether the bytes Append writes
// are in the ring's shared memory, seen through mem, another mapping of
// it, as soon as Append wrote them: only if Append wrote into the ring
// itself, not into a buffer copied there afterwards. Every value must be
// unique.
type spyCodec struct {
	mem     []byte
	mu      sync.Mutex
	inside  int
	outside int
}

func (c *spyCodec) Name() string { return "bytes" }

func (c *spyCodec) Append(dst []byte, v []byte) ([]byte, error) {
	dst = append(dst, v...)
	c.mu.Lock()
	if bytes.Contains(c.mem, v) {
		c.inside++
	} else {
		c.outside++
	}
	c.mu.Unlock()
	return dst, nil
}

func (c *spyCodec) EncodedSize(v []byte) (int, bool) { return len(v), true }

func (c *spyCodec) Decode(data []byte, v *[]byte) error { return codec.Bytes().Decode(data, v) }

func (c *spyCodec) counts() (inside, outside int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inside, c.outside
}

// Send, SendTag and TrySend encode a value whose size the codec knows
// straight into the ring's reserved room: the codec appends to a slice of
// the shared mapping, never to a buffer of the Sender's (copied into the
// ring afterwards). With the
// handshake on, only the first value (sent after the hello) takes the
// buffer.
func TestRingSendEncodesInPlace(t *testing.T) {
	for _, hello := range []bool{false, true} {
		t.Run(fmt.Sprintf("handshake=%v", hello), func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			m, err := endpoints.NewMemfd("ring-encode-in-place", 256+4096)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if err := endpoints.FormatRing(m); err != nil {
				t.Fatal(err)
			}
			spy := &spyCodec{mem: m.Bytes()} // the ends map the memfd again
			tx, err := endpoints.RingSender[[]byte](m, ipcchan.WithCodec(spy), ipcchan.WithHandshake(hello))
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			rx, err := endpoints.RingReceiver[[]byte](m, ipcchan.WithHandshake(hello))
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			const n = 300 // sizes up to 700 bytes in a 4 KiB ring: it wraps around
			for i := range n {
				msg := fmt.Appendf(nil, "#%05d#%s", i, strings.Repeat(string(rune('a'+i%26)), i*7%701))
				switch i % 3 {
				case 0:
					err = tx.Send(ctx, msg)
				case 1:
					err = tx.SendTag(ctx, uint32(i), msg)
				default:
					err = tx.TrySend(msg)
				}
				if err != nil {
					t.Fatalf("send %d: %v", i, err)
				}
				got, err := rx.Recv(ctx)
				if err != nil || string(got) != string(msg) {
					t.Fatalf("Recv %d = %d bytes, %v; want %d bytes %.10q…", i, len(got), err, len(msg), msg)
				}
			}
			inside, outside := spy.counts()
			wantOutside := 0
			if hello {
				wantOutside = 1
			}
			if inside != n-wantOutside || outside != wantOutside {
				t.Fatalf("the codec appended %d values into the ring and %d into a buffer of the Sender's, want %d and %d", inside, outside, n-wantOutside, wantOutside)
			}
		})
	}
}

// A value the codec refuses, in place, publishes nothing: the Sender
// returns the codec's error and the next value arrives, alone. A value
// over the limit is refused before anything is reserved.
func TestRingSendInPlaceRefusals(t *testing.T) {
	ipcchantest.CheckFDs(t)
	c, err := codec.CStruct[inPlaceStruct]()
	if err != nil {
		t.Fatal(err)
	}
	tx, rx, err := endpoints.RingPair[inPlaceStruct](256+4096, ipcchan.WithCodec(c))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad := inPlaceStruct{Seq: 1, Name: "far too long for char[8]"}
	if err := tx.Send(ctx, bad); !errors.Is(err, codec.ErrEncode) {
		t.Fatalf("Send of a value CStruct refuses = %v, want an error wrapping codec.ErrEncode", err)
	}
	if err := tx.TrySend(bad); !errors.Is(err, codec.ErrEncode) {
		t.Fatalf("TrySend of a value CStruct refuses = %v, want an error wrapping codec.ErrEncode", err)
	}
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("after refused values, TryRecv = %v, want ErrWouldBlock", err)
	}
	good := inPlaceStruct{Seq: 2, X: 1.5, Y: -2, Name: "seven!!"}
	if err := tx.Send(ctx, good); err != nil {
		t.Fatal(err)
	}
	if got, err := rx.Recv(ctx); err != nil || got != good {
		t.Fatalf("Recv = %+v, %v; want %+v", got, err, good)
	}

	stx, srx, err := endpoints.RingPair[string](256+4096, ipcchan.WithMaxMessageSize(100))
	if err != nil {
		t.Fatal(err)
	}
	defer stx.Close()
	defer srx.Close()
	if err := stx.Send(ctx, strings.Repeat("x", 101)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Fatalf("Send over the limit = %v, want ErrMessageTooLarge", err)
	}
	if err := stx.TrySend(strings.Repeat("x", 101)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Fatalf("TrySend over the limit = %v, want ErrMessageTooLarge", err)
	}
	if err := stx.Send(ctx, strings.Repeat("y", 100)); err != nil {
		t.Fatal(err)
	}
	if got, err := srx.Recv(ctx); err != nil || got != strings.Repeat("y", 100) {
		t.Fatalf("Recv = %d bytes, %v; want the 100-byte value alone", len(got), err)
	}
	if _, err := srx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("something else arrived: %v", err)
	}
}

// TrySend on a full ring returns ErrWouldBlock, encoding nothing, and
// sends once a receive made room.
func TestRingTrySendInPlaceFull(t *testing.T) {
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[string](256 + 1024)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	msg := strings.Repeat("z", 200)
	sent := 0
	for ; ; sent++ {
		if err := tx.TrySend(msg); err == ipcchan.ErrWouldBlock {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if sent > 100 {
			t.Fatal("a 1 KiB ring took 100 values of 200 bytes")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := rx.Recv(ctx); err != nil || got != msg {
		t.Fatalf("Recv = %d bytes, %v", len(got), err)
	}
	if err := tx.TrySend("after"); err != nil {
		t.Fatalf("TrySend once there is room: %v", err)
	}
	for range sent - 1 {
		if got, err := rx.Recv(ctx); err != nil || got != msg {
			t.Fatalf("Recv = %d bytes, %v", len(got), err)
		}
	}
	if got, err := rx.Recv(ctx); err != nil || got != "after" {
		t.Fatalf("Recv = %q, %v; want after", got, err)
	}
}

// lyingSizer says every encoding is 4 bytes; the bytes it appends are
// more or fewer.
type lyingSizer struct{ codec.Codec[string] }

func (lyingSizer) EncodedSize(string) (int, bool) { return 4, true }

// A codec whose Sizer is wrong loses nothing: an encoding shorter than
// said is sent at its length, a longer one through the Sender's buffer.
func TestRingSendInPlaceWrongSizer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[string](256+4096, ipcchan.WithCodec(lyingSizer{codec.String()}))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, v := range []string{"ab", "four", "longer than four", ""} {
		if err := tx.Send(ctx, v); err != nil {
			t.Fatalf("Send(%q): %v", v, err)
		}
		if err := tx.TrySend(v); err != nil {
			t.Fatalf("TrySend(%q): %v", v, err)
		}
		for range 2 {
			if got, err := rx.Recv(ctx); err != nil || got != v {
				t.Fatalf("Recv = %q, %v; want %q", got, err, v)
			}
		}
	}
}

func init() {
	// send-typed sends typedCount values of each kind on the rings handed
	// down as "bytes", "string" and "cstruct", alternating Send, SendTag
	// and TrySend (see sendAnyway), and closes them.
	childRoles["send-typed"] = func() error {
		c, err := codec.CStruct[inPlaceStruct]()
		if err != nil {
			return err
		}
		btx, err := endpoints.InheritSender[[]byte]("bytes")
		if err != nil {
			return err
		}
		stx, err := endpoints.InheritSender[string]("string")
		if err != nil {
			return err
		}
		ctx_, err := endpoints.InheritSender[inPlaceStruct]("cstruct", ipcchan.WithCodec(c))
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for i := range typedCount {
			if err := sendAnyway(ctx, btx, i, typedBytes(i)); err != nil {
				return err
			}
			if err := sendAnyway(ctx, stx, i, string(typedBytes(i))); err != nil {
				return err
			}
			if err := sendAnyway(ctx, ctx_, i, typedStruct(i)); err != nil {
				return err
			}
		}
		return errors.Join(btx.Close(), stx.Close(), ctx_.Close())
	}
}

const typedCount = 500

func typedBytes(i int) []byte {
	b := make([]byte, i*13%1500)
	for j := range b {
		b[j] = byte(i*7 + j)
	}
	return b
}

func typedStruct(i int) inPlaceStruct {
	return inPlaceStruct{Seq: uint32(i), X: float64(i) / 3, Y: -float64(i), Name: fmt.Sprint(i)}
}

// sendAnyway sends v the i%3-th way: Send, SendTag with tag i, or TrySend
// (and Send if that would block: a full ring, or another goroutine
// sending).
func sendAnyway[T any](ctx context.Context, tx *ipcchan.Sender[T], i int, v T) error {
	switch i % 3 {
	case 0:
		return tx.Send(ctx, v)
	case 1:
		return tx.SendTag(ctx, uint32(i), v)
	}
	if err := tx.TrySend(v); err != ipcchan.ErrWouldBlock {
		return err
	}
	return tx.Send(ctx, v)
}

// []byte, string and CStruct values encoded in place by another process
// arrive identical, in order, with their tags.
func TestRingInPlaceAcrossProcesses(t *testing.T) {
	ipcchantest.CheckFDs(t)
	c, err := codec.CStruct[inPlaceStruct]()
	if err != nil {
		t.Fatal(err)
	}
	btx, brx, err := endpoints.RingPair[[]byte](256 + 8192)
	if err != nil {
		t.Fatal(err)
	}
	defer brx.Close()
	stx, srx, err := endpoints.RingPair[string](256 + 8192)
	if err != nil {
		t.Fatal(err)
	}
	defer srx.Close()
	ctx_, crx, err := endpoints.RingPair[inPlaceStruct](256+1024, ipcchan.WithCodec(c))
	if err != nil {
		t.Fatal(err)
	}
	defer crx.Close()
	child := startHelper(t, "send-typed", nil, endpoints.Pass("bytes", btx), endpoints.Pass("string", stx), endpoints.Pass("cstruct", ctx_))
	for _, w := range []interface{ WatchPeer(int) error }{brx, srx, crx} {
		if err := w.WatchPeer(child.cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// One receiver per ring: the child fills them in turn.
	var wg sync.WaitGroup
	check := func(name string, recv func(i int) (ok bool, desc string, err error)) {
		defer wg.Done()
		for i := 0; ; i++ {
			ok, desc, err := recv(i)
			if err == io.EOF && i == typedCount {
				return
			}
			if err != nil || !ok {
				t.Errorf("%s value %d: %s, %v", name, i, desc, err)
				return
			}
		}
	}
	wantTag := func(i int) uint32 {
		if i%3 == 1 {
			return uint32(i)
		}
		return 0
	}
	wg.Add(3)
	go check("[]byte", func(i int) (bool, string, error) {
		got, tag, err := brx.RecvTag(ctx)
		return string(got) == string(typedBytes(i)) && tag == wantTag(i), fmt.Sprintf("%d bytes, tag %d", len(got), tag), err
	})
	go check("string", func(i int) (bool, string, error) {
		got, tag, err := srx.RecvTag(ctx)
		return got == string(typedBytes(i)) && tag == wantTag(i), fmt.Sprintf("%d bytes, tag %d", len(got), tag), err
	})
	go check("cstruct", func(i int) (bool, string, error) {
		got, tag, err := crx.RecvTag(ctx)
		return got == typedStruct(i) && tag == wantTag(i), fmt.Sprintf("%+v, tag %d", got, tag), err
	})
	wg.Wait()
	if err := child.wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// Concurrent Senders encoding in place never interleave: many goroutines
// sending strings and C structs through Send and TrySend on one ring each
// deliver every value once, whole.
func TestRingInPlaceConcurrent(t *testing.T) {
	const goroutines, each = 8, 200
	ipcchantest.CheckFDs(t)
	tx, rx, err := endpoints.RingPair[string](256 + 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var senders sync.WaitGroup
	for g := range goroutines {
		senders.Add(1)
		go func() {
			defer senders.Done()
			for i := range each {
				// The value says who sent it and how long it is.
				head := fmt.Sprintf("%d/%d/", g, i)
				v := head + strings.Repeat(string(rune('a'+g)), (g*31+i*17)%400)
				if err := sendAnyway(ctx, tx, i, v); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() { senders.Wait(); tx.Close() }()
	seen := map[string]bool{}
	for {
		v, err := rx.Recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var g, i int
		if _, err := fmt.Sscanf(v, "%d/%d/", &g, &i); err != nil {
			t.Fatalf("torn value %q: %v", v, err)
		}
		head := fmt.Sprintf("%d/%d/", g, i)
		if want := head + strings.Repeat(string(rune('a'+g)), (g*31+i*17)%400); v != want || seen[head] {
			t.Fatalf("value %q: torn or twice (want %q once)", v, want)
		}
		seen[head] = true
	}
	if len(seen) != goroutines*each {
		t.Fatalf("%d values arrived, want %d", len(seen), goroutines*each)
	}
}
