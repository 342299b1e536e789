package codec_test

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/internal/zerotest"
)

func TestFrameRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	fw := codec.NewFrameWriter(&stream)
	msgs := [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{7}, 70000)}
	for i, m := range msgs {
		if err := fw.WriteFrame(uint32(i), m); err != nil {
			t.Fatal(err)
		}
	}
	if got := stream.Bytes()[:8]; !bytes.Equal(got, []byte{0, 0, 0, 3, 0, 0, 0, 0}) {
		t.Fatalf("header %x, want big-endian length 3 and tag 0", got)
	}
	fr := codec.NewFrameReader(&stream, 0)
	for i, m := range msgs {
		tag, p, err := fr.ReadFrame()
		if err != nil || tag != uint32(i) || !bytes.Equal(p, m) {
			t.Fatalf("frame %d: tag %d, %d bytes, %v", i, tag, len(p), err)
		}
	}
	if _, _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	frame := codec.AppendFrame(nil, 1, []byte("payload"))
	for _, tt := range []struct {
		name  string
		input []byte
		max   int
		want  error
	}{
		{"torn header", frame[:5], 0, io.ErrUnexpectedEOF},
		{"torn payload", frame[:10], 0, io.ErrUnexpectedEOF},
		{"too large", frame, 3, codec.ErrFrameTooLarge},
		{"hostile length", []byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, 0, codec.ErrFrameTooLarge},
	} {
		fr := codec.NewFrameReader(bytes.NewReader(tt.input), tt.max)
		_, _, err := fr.ReadFrame()
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
		if _, _, again := fr.ReadFrame(); again != err {
			t.Errorf("%s: the error is not sticky: %v", tt.name, again)
		}
	}
}

// A header announcing a long payload costs nothing until the payload
// arrives; a long payload that does arrive is read whole.
func TestFrameReaderGrowsWithWhatArrives(t *testing.T) {
	var hdr [codec.HeaderSize]byte
	codec.PutHeader(hdr[:], codec.DefaultMaxFrameSize, 0)
	fr := codec.NewFrameReader(io.MultiReader(bytes.NewReader(hdr[:]), bytes.NewReader(make([]byte, 1000))), 0)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := fr.ReadFrame()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("ReadFrame = %v, want io.ErrUnexpectedEOF", err)
	}
	if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
		t.Fatalf("a header announcing %d bytes, 1000 sent: %d bytes allocated", codec.DefaultMaxFrameSize, n)
	}
	big := make([]byte, 5<<20+3)
	for i := range big {
		big[i] = byte(i / 7)
	}
	stream := codec.AppendFrame(codec.AppendFrame(nil, 1, big), 2, []byte("small"))
	fr = codec.NewFrameReader(iotest.HalfReader(bytes.NewReader(stream)), 0)
	if tag, p, err := fr.ReadFrame(); err != nil || tag != 1 || !bytes.Equal(p, big) {
		t.Fatalf("a 5 MiB frame: tag %d, %d bytes, %v", tag, len(p), err)
	}
	if tag, p, err := fr.ReadFrame(); err != nil || tag != 2 || string(p) != "small" {
		t.Fatalf("the frame after: tag %d, %q, %v", tag, p, err)
	}
}

func TestPutHeaderRejectsBadLengths(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("PutHeader accepted a negative length")
		}
	}()
	codec.PutHeader(make([]byte, 8), -1, 0)
}

// FrameReaders and FrameWriters nobody made: errors, not panics.
func TestFrameReaderWriterZero(t *testing.T) {
	zerotest.Check(t, &codec.FrameReader{}, (*codec.FrameReader)(nil), &codec.FrameWriter{}, (*codec.FrameWriter)(nil))
}
