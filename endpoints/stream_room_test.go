package endpoints_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// patterned returns n bytes that differ from one position to the next, so
// that a byte out of place shows.
func patterned(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i/7) ^ byte(i) ^ seed
	}
	return b
}

// A large message received with RecvInto into a destination with room for
// it is read from the kernel straight into that memory: the receiver's own
// buffer does not grow to hold it (nothing near its size is allocated) and
// the value is the destination's memory. The peer is another process: the
// echo child sends back what it receives.
func TestRecvIntoReadsALargeMessageIntoTheDestination(t *testing.T) {
	const size = 4 << 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, in, err := endpoints.PipePair[[]byte](ipcchanNoAtomic...)
	if err != nil {
		t.Fatal(err)
	}
	out, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	p := startHelper(t, "echo", []string{envEchoLarge + "=1"}, endpoints.Pass("in", in), endpoints.Pass("out", out))

	// A small message first: both hellos are through, the receiver's
	// buffer is made, and nothing that follows is a first time.
	dst := make([]byte, 0, size)
	mem := &dst[:1][0]
	if err := tx.Send(ctx, []byte("warm")); err != nil {
		t.Fatal(err)
	}
	if err := rx.RecvInto(ctx, &dst); err != nil || string(dst) != "warm" {
		t.Fatalf("first message: %q, %v", dst, err)
	}

	msg := patterned(size, 1)
	sent := make(chan error, 1)
	go func() { sent <- tx.Send(ctx, msg) }()
	allocated := allocatedDuring(func() { err = rx.RecvInto(ctx, &dst) })
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst, msg) {
		t.Fatalf("received %d bytes, not the %d sent", len(dst), len(msg))
	}
	if &dst[0] != mem {
		t.Errorf("the message is at %p, not in the destination's memory at %p", &dst[0], mem)
	}
	if allocated > size/4 {
		t.Errorf("receiving a %d-byte message into room for it allocated %d bytes", size, allocated)
	}
	tx.Close()
	if err := p.wait(); err != nil {
		t.Fatal(err)
	}
}

// A RecvInto that ends part-way through a payload it reads straight into
// its destination (its context ends, the stream ends) takes nothing off the
// stream: the next receive, into room or not, gets the whole message; a
// stream that ends inside it is io.ErrUnexpectedEOF. The destination's
// slice is left as it was.
func TestRecvIntoCutShortLosesNothing(t *testing.T) {
	const size = 1 << 20
	frame := codec.AppendFrame(nil, 9, patterned(size, 2))
	for _, next := range []string{"RecvInto", "RecvInto into less", "Recv"} {
		t.Run(next, func(t *testing.T) {
			rx, w := rawPipe(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			// The first 300 KiB of the frame: the write returns once the
			// receive has taken most of it, and then the receive is
			// stopped while it waits for the rest.
			wrote := make(chan error, 1)
			go func() {
				_, err := w.Write(frame[:300<<10])
				cancel()
				wrote <- err
			}()
			dst := make([]byte, 5, size)
			err := rx.RecvInto(ctx, &dst)
			if err != context.Canceled {
				t.Fatalf("RecvInto cut short = %v, want context.Canceled", err)
			}
			if len(dst) != 5 {
				t.Fatalf("a RecvInto that failed changed its destination to %d bytes", len(dst))
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
			go func() { _, err := w.Write(frame[300<<10:]); wrote <- err }()
			var got []byte
			var tag uint32
			switch next {
			case "RecvInto":
				err = rx.RecvInto(context.Background(), &dst)
				got = dst
			case "RecvInto into less":
				small := make([]byte, 0, 1000)
				err = rx.RecvInto(context.Background(), &small)
				got = small
			default:
				got, tag, err = rx.RecvTag(context.Background())
				if tag != 9 {
					t.Errorf("tag %d, want 9", tag)
				}
			}
			if err != nil || !bytes.Equal(got, frame[codec.HeaderSize:]) {
				t.Fatalf("the message after a cut-short receive: %d bytes, %v", len(got), err)
			}
			if err := <-wrote; err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("inside the header", func(t *testing.T) {
		rx, w := rawPipe(t)
		w.Write(frame[:3])
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		dst := make([]byte, 0, size)
		if err := rx.RecvInto(ctx, &dst); err != context.DeadlineExceeded {
			t.Fatalf("RecvInto of 3 bytes of a header = %v, want context.DeadlineExceeded", err)
		}
		go w.Write(frame[3:])
		if err := rx.RecvInto(context.Background(), &dst); err != nil || !bytes.Equal(dst, frame[codec.HeaderSize:]) {
			t.Fatalf("the message after: %d bytes, %v", len(dst), err)
		}
	})
	t.Run("end of stream", func(t *testing.T) {
		rx, w := rawPipe(t)
		go func() { w.Write(frame[:200<<10]); w.Close() }()
		dst := make([]byte, 0, size)
		if err := rx.RecvInto(context.Background(), &dst); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("RecvInto of a frame the stream ends inside = %v, want io.ErrUnexpectedEOF", err)
		}
		if err := rx.RecvInto(context.Background(), &dst); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("RecvInto again = %v, want io.ErrUnexpectedEOF again", err)
		}
	})
}

// Frames of every kind, one after another in one stream, received with
// RecvInto into room for the large ones: small ones read together with a
// large one's start, frames larger than the room, an empty one, one over
// the limit (refused and skipped), each arriving whole and in order.
func TestRecvIntoMixedFrames(t *testing.T) {
	rx, w := rawPipe(t, ipcchan.WithMaxMessageSize(2<<20))
	sizes := []int{10, 40 << 10, 3, 200 << 10, 0, 1, 64 << 10, 100 << 10, 5, 3 << 20, 7, 1 << 20, 33 << 10}
	var stream []byte
	for i, n := range sizes {
		stream = codec.AppendFrame(stream, uint32(i), patterned(n, byte(i)))
	}
	go func() { w.Write(stream) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dst := make([]byte, 0, 128<<10)
	for i, n := range sizes {
		if n > 2<<20 {
			if err := rx.RecvInto(ctx, &dst); !errors.Is(err, ipcchan.ErrFrameTooLarge) {
				t.Fatalf("frame %d, %d bytes over the limit: %v, want ErrFrameTooLarge", i, n, err)
			}
			continue
		}
		if err := rx.RecvInto(ctx, &dst); err != nil {
			t.Fatalf("frame %d (%d bytes): %v", i, n, err)
		}
		if !bytes.Equal(dst, patterned(n, byte(i))) {
			t.Fatalf("frame %d: %d bytes, not the %d sent", i, len(dst), n)
		}
	}
}

// A frame larger than the room offered, which has all come by the time
// the receive reads, is received through the receiver's buffer as usual,
// and so is the frame after it.
func TestRecvIntoFrameLargerThanTheRoom(t *testing.T) {
	rx, w := rawPipe(t)
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 256<<10); err != nil {
		t.Fatal(err)
	}
	big, small := patterned(100<<10, 4), patterned(50<<10, 5)
	stream := codec.AppendFrame(codec.AppendFrame(nil, 1, big), 2, small)
	if _, err := w.Write(stream); err != nil { // all of it in the pipe before the receive
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dst := make([]byte, 0, 64<<10+100)
	if err := rx.RecvInto(ctx, &dst); err != nil || !bytes.Equal(dst, big) {
		t.Fatalf("a frame larger than the room: %d bytes, %v", len(dst), err)
	}
	dst = make([]byte, 0, 64<<10+100)
	if err := rx.RecvInto(ctx, &dst); err != nil || !bytes.Equal(dst, small) {
		t.Fatalf("the frame after it: %d bytes, %v", len(dst), err)
	}
}

// A large payload is written from memory at any alignment, in pieces cut
// at page boundaries, and arrives whole, frame after frame.
func TestLargePayloadsAtAnyAlignment(t *testing.T) {
	tx, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	defer tx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	backing := patterned(300<<10, 3)
	type msg struct{ off, n int }
	var msgs []msg
	for _, off := range []int{0, 1, 8, 4080, 4088, 4095, 5000} {
		for _, n := range []int{32 << 10, 64<<10 + 3, 200 << 10} {
			msgs = append(msgs, msg{off, n})
		}
	}
	sent := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			if err := tx.Send(ctx, backing[m.off:m.off+m.n]); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	var dst []byte
	for i, m := range msgs {
		if i%2 == 1 {
			dst = nil // every other one through the receiver's buffer
		}
		if err := rx.RecvInto(ctx, &dst); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(dst, backing[m.off:m.off+m.n]) {
			t.Fatalf("%d bytes from offset %d arrived different", m.n, m.off)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
}

// A pipe grows to hold two of the largest frames sent, so that such a
// frame goes in while the reader takes the one before; smaller frames
// leave it as it is.
func TestPipeGrowsForLargeFrames(t *testing.T) {
	tx, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	defer tx.Close()
	f, err := rx.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	capacity := func() int {
		n, err := unix.FcntlInt(f.Fd(), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	send := func(n int) {
		t.Helper()
		sent := make(chan error, 1)
		go func() { sent <- tx.Send(ctx, make([]byte, n)) }()
		if v, err := rx.Recv(ctx); err != nil || len(v) != n {
			t.Fatalf("received %d bytes, %v; want %d", len(v), err, n)
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	before := capacity()
	send(before / 2)
	if c := capacity(); c != before {
		t.Fatalf("a frame of half the pipe's %d bytes made it %d", before, c)
	}
	send(before + 1000)
	if c := capacity(); c < 2*(before+1000) {
		t.Fatalf("after a frame of %d bytes the pipe holds %d, want room for two", before+1000, c)
	}
}
