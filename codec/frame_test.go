package codec_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/ipcchan/ipcchan/codec"
	"github.com/ipcchan/ipcchan/internal/zerotest"
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
