package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ipcchan/go/codec"
)

// The frame reader never panics, never hands out a payload over the limit,
// and every frame it returns re-encodes to the bytes it came from.
func FuzzFrameReader(f *testing.F) {
	f.Add(codec.AppendFrame(nil, 1, []byte("hello")))
	f.Add(append(codec.AppendFrame(nil, 0, nil), codec.AppendFrame(nil, 9, []byte("x"))...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 12
		fr := codec.NewFrameReader(bytes.NewReader(data), max)
		var again []byte
		for {
			tag, p, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if len(p) > max {
				t.Fatalf("payload of %d bytes over the limit", len(p))
			}
			again = codec.AppendFrame(again, tag, p)
			if !bytes.HasPrefix(data, again) {
				t.Fatal("frames do not re-encode to the input")
			}
		}
	})
}

func fuzzDecoder[T any](f *testing.F, c codec.Codec[T], seeds ...T) {
	for _, s := range seeds {
		b, err := c.Append(nil, s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0x00, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var v T
		err := c.Decode(data, &v)
		if err != nil && !errors.Is(err, codec.ErrDecode) {
			t.Fatalf("%s: error %v does not wrap ErrDecode", c.Name(), err)
		}
		if err == nil {
			// What decodes must encode again and decode to the same.
			b, err := c.Append(nil, v)
			if err != nil {
				return // e.g. JSON of a NaN: not representable, not a decoder bug
			}
			var w T
			if err := c.Decode(b, &w); err != nil {
				t.Fatalf("%s: re-encoded value does not decode: %v", c.Name(), err)
			}
		}
	})
}

func FuzzBytes(f *testing.F)  { fuzzDecoder(f, codec.Bytes(), []byte("abc")) }
func FuzzString(f *testing.F) { fuzzDecoder(f, codec.String(), "abc") }
func FuzzJSON(f *testing.F) {
	fuzzDecoder(f, codec.JSON[document](), document{Title: "t", Tags: []string{"a"}})
}

// gobDoc is document without its map: encoding/gob allocates a map of
// whatever size its input announces (see codec.Gob), so only types
// without maps decode hostile input within bounds. The corpus keeps the
// input that showed it.
type gobDoc struct {
	Title string
	Tags  []string
	N     int64
	Next  *gobDoc
}

func FuzzGob(f *testing.F) {
	fuzzDecoder(f, codec.Gob[gobDoc](), gobDoc{Title: "t", Tags: []string{"a"}, Next: &gobDoc{N: 1}})
}

func FuzzAppender(f *testing.F) {
	c, err := codec.Appender[stamp]()
	if err != nil {
		f.Fatal(err)
	}
	fuzzDecoder(f, c, stamp{1, 2})
}

// Binary decodes what encoding/binary decodes, field for field, in both
// orders, and its own encoding round-trips bit for bit. (It keeps the bits
// of a signalling NaN, which encoding/binary's reflection quiets on the way
// through float64, so the two are compared after encoding/binary has
// re-encoded both values: that quiets both alike.)
func FuzzBinary(f *testing.F) {
	le, _ := codec.Binary[fixed](binary.LittleEndian)
	b, _ := le.Append(nil, sampleFixed())
	f.Add(b, false)
	f.Add(b, true)
	f.Add([]byte{1, 2, 3}, false)
	f.Fuzz(func(t *testing.T, data []byte, big bool) {
		var order binary.ByteOrder = binary.LittleEndian
		if big {
			order = binary.BigEndian
		}
		c, _ := codec.Binary[fixed](order)
		var got, want fixed
		err := c.Decode(data, &got)
		_, werr := binary.Decode(data, order, &want)
		if len(data) != binary.Size(want) {
			if !errors.Is(err, codec.ErrDecode) {
				t.Fatalf("%d bytes: %v, want ErrDecode", len(data), err)
			}
			return
		}
		if err != nil || werr != nil {
			t.Fatalf("Decode: %v; encoding/binary: %v", err, werr)
		}
		x, _ := binary.Append(nil, order, got)
		y, _ := binary.Append(nil, order, want)
		if !bytes.Equal(x, y) {
			t.Fatalf("decoded values differ:\n%x\n%x", x, y)
		}
		enc, _ := c.Append(nil, got)
		var back fixed
		if err := c.Decode(enc, &back); err != nil {
			t.Fatal(err)
		}
		if again, _ := c.Append(nil, back); !bytes.Equal(enc, again) {
			t.Fatalf("round trip changed bits:\n%x\n%x", enc, again)
		}
	})
}
