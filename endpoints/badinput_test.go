package endpoints_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// rawPipe returns a Receiver on the read end of a pipe and the plain write
// end, for writing arbitrary bytes at it.
func rawPipe(t *testing.T, opts ...ipcchan.Option) (*ipcchan.Receiver[[]byte], *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The test writes raw frames: no handshake.
	opts = append([]ipcchan.Option{ipcchan.WithHandshake(false)}, opts...)
	rx, err := endpoints.FileReceiver[[]byte](r, opts...)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close(); w.Close() })
	return rx, w
}

func TestOversizedFrameIsRefusedAndSkipped(t *testing.T) {
	rx, w := rawPipe(t, ipcchan.WithMaxMessageSize(1024))
	big := codec.AppendFrame(nil, 0, make([]byte, 5000))
	next := codec.AppendFrame(nil, 7, []byte("after"))
	w.Write(append(big, next...))
	ctx := context.Background()
	_, err := rx.Recv(ctx)
	if !errors.Is(err, ipcchan.ErrFrameTooLarge) {
		t.Fatalf("Recv = %v, want ErrFrameTooLarge", err)
	}
	var oe *ipcchan.OpError
	if !errors.As(err, &oe) || oe.Op != "recv" || oe.Endpoint == "" {
		t.Fatalf("error %v names no operation and endpoint", err)
	}
	m, tag, err := rx.RecvTag(ctx)
	if err != nil || string(m) != "after" || tag != 7 {
		t.Fatalf("frame after the oversized one: %q tag %d, %v", m, tag, err)
	}
}

func TestHostileLengthAllocatesNothing(t *testing.T) {
	rx, w := rawPipe(t)
	var hdr [codec.HeaderSize]byte
	binary.BigEndian.PutUint32(hdr[:], 0xFFFF_FFFF) // a 4 GiB length, which no int holds on 32-bit Linux
	w.Write(hdr[:])
	if _, err := rx.Recv(context.Background()); !errors.Is(err, ipcchan.ErrFrameTooLarge) {
		t.Fatalf("Recv = %v, want ErrFrameTooLarge", err)
	}
}

// A header announcing a long frame costs nothing until its bytes arrive;
// as they do, the buffer grows with them, and the frame arrives whole.
func TestAnnouncedLengthIsNotAllocated(t *testing.T) {
	rx, w := rawPipe(t)
	whole := make([]byte, codec.DefaultMaxFrameSize)
	for i := range whole {
		whole[i] = byte(i / 4093)
	}
	frame := codec.AppendFrame(nil, 3, whole)
	w.Write(frame[:1000])
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	var err error
	allocated := allocatedDuring(func() { _, err = rx.Recv(ctx) })
	if err != context.DeadlineExceeded {
		t.Fatalf("Recv of an incomplete frame: %v", err)
	}
	if allocated > 1<<20 {
		t.Fatalf("a header announcing %d bytes, and 1000 sent: %d bytes allocated", len(whole), allocated)
	}
	go w.Write(frame[1000:])
	m, tag, err := rx.RecvTag(context.Background())
	if err != nil || tag != 3 || !bytes.Equal(m, whole) {
		t.Fatalf("the frame, once sent: %d bytes, tag %d, %v", len(m), tag, err)
	}
}

func TestTruncatedFrame(t *testing.T) {
	rx, w := rawPipe(t)
	whole := codec.AppendFrame(nil, 0, []byte("whole"))
	torn := codec.AppendFrame(nil, 0, make([]byte, 100))[:50]
	w.Write(append(whole, torn...))
	w.Close()
	ctx := context.Background()
	if m, err := rx.Recv(ctx); err != nil || string(m) != "whole" {
		t.Fatalf("first frame: %q, %v", m, err)
	}
	if _, err := rx.Recv(ctx); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("torn frame: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestTruncatedHeader(t *testing.T) {
	rx, w := rawPipe(t)
	w.Write([]byte{0, 0, 0})
	w.Close()
	if _, err := rx.Recv(context.Background()); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Recv = %v, want io.ErrUnexpectedEOF", err)
	}
}

type point struct{ X, Y int32 }

func TestWrongCodecIsADecodeErrorAndLosesNothing(t *testing.T) {
	tx, rx, err := endpoints.PipePair[point]()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	if err := tx.Send(ctx, point{0, 1}); err != nil { // after the hello
		t.Fatal(err)
	}
	// Write a frame of the wrong size through the raw transport.
	if err := tx.Transport().SendMsg(ctx, 0, []byte("not a point")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, point{1, 2}); err != nil {
		t.Fatal(err)
	}
	if p, err := rx.Recv(ctx); err != nil || p != (point{0, 1}) {
		t.Fatalf("first value: %v, %v", p, err)
	}
	if _, err := rx.Recv(ctx); !errors.Is(err, ipcchan.ErrDecode) {
		t.Fatalf("Recv = %v, want ErrDecode", err)
	}
	if p, err := rx.Recv(ctx); err != nil || p != (point{1, 2}) {
		t.Fatalf("next value: %v, %v", p, err)
	}
}

func TestOversizedSendIsRefusedBeforeSending(t *testing.T) {
	tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithMaxMessageSize(100))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	if err := tx.Send(context.Background(), make([]byte, 101)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Fatalf("Send = %v, want ErrMessageTooLarge", err)
	}
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("something was sent: %v", err)
	}
	// Atomic writes cap a frame at PIPE_BUF.
	atx, arx, err := endpoints.PipePair[[]byte](ipcchan.WithAtomicWrites(true))
	if err != nil {
		t.Fatal(err)
	}
	defer atx.Close()
	defer arx.Close()
	if err := atx.Send(context.Background(), make([]byte, 4096)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
		t.Fatalf("atomic Send of 4096 bytes = %v, want ErrMessageTooLarge", err)
	}
	if err := atx.Send(context.Background(), make([]byte, 4088)); err != nil {
		t.Fatalf("atomic Send of 4088 bytes = %v", err)
	}
}

func TestTags(t *testing.T) {
	tx, rx, err := endpoints.PipePair[string](ipcchan.WithTag(3))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	defer rx.Close()
	ctx := context.Background()
	tx.Send(ctx, "default")
	tx.SendTag(ctx, 9, "nine")
	for _, want := range []struct {
		v   string
		tag uint32
	}{{"default", 3}, {"nine", 9}} {
		v, tag, err := rx.RecvTag(ctx)
		if err != nil || v != want.v || tag != want.tag {
			t.Fatalf("RecvTag = %q, %d, %v; want %q, %d", v, tag, err, want.v, want.tag)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	tx, rx, err := endpoints.PipePair[int64]()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := tx.Close(); err != nil {
			t.Fatal(err)
		}
		if err := rx.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Send(context.Background(), 1); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
	if _, err := rx.TryRecv(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("TryRecv after Close = %v", err)
	}
}

func TestPeerGoneOnWrite(t *testing.T) {
	tx, rx, err := endpoints.PipePair[[]byte]()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		err = tx.Send(context.Background(), []byte("x"))
		if err != nil {
			break
		}
	}
	if !errors.Is(err, ipcchan.ErrPeerGone) {
		t.Fatalf("Send to a pipe with no reader = %v, want ErrPeerGone", err)
	}
}
