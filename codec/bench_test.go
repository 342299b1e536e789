package codec_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ipcchan/go/codec"
)

// point64 is a 64-byte fixed-size struct.
type point64 struct {
	Seq  uint64
	Vals [7]float64
}

func benchCodec[T any](b *testing.B, c codec.Codec[T], v T) {
	buf, err := c.Append(nil, v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Append", func(b *testing.B) {
		dst := make([]byte, 0, 2*len(buf)+64)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for range b.N {
			dst, _ = c.Append(dst[:0], v)
		}
	})
	b.Run("Decode", func(b *testing.B) {
		var out T
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for range b.N {
			if err := c.Decode(buf, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkBytes64(b *testing.B)  { benchCodec(b, codec.Bytes(), make([]byte, 64)) }
func BenchmarkBytes4K(b *testing.B)  { benchCodec(b, codec.Bytes(), make([]byte, 4096)) }
func BenchmarkString64(b *testing.B) { benchCodec(b, codec.String(), string(make([]byte, 64))) }

func BenchmarkBinary64(b *testing.B) {
	c, _ := codec.Binary[point64](binary.LittleEndian)
	benchCodec(b, c, point64{Seq: 1})
}

func BenchmarkBinary64BigEndian(b *testing.B) {
	c, _ := codec.Binary[point64](binary.BigEndian)
	benchCodec(b, c, point64{Seq: 1})
}

func BenchmarkBinary4K(b *testing.B) {
	c, _ := codec.Binary[[1024]uint32](binary.LittleEndian)
	benchCodec(b, c, [1024]uint32{})
}

// The reflection-based encoding/binary on the same 64-byte struct, for scale.
func BenchmarkEncodingBinary64(b *testing.B) {
	v := point64{Seq: 1}
	b.Run("Append", func(b *testing.B) {
		dst := make([]byte, 0, 128)
		b.SetBytes(64)
		b.ReportAllocs()
		for range b.N {
			dst, _ = binary.Append(dst[:0], binary.LittleEndian, v)
		}
	})
}

func BenchmarkAppender(b *testing.B) {
	c, _ := codec.Appender[stamp]()
	benchCodec(b, c, stamp{1, 2})
}

func BenchmarkJSON64(b *testing.B) {
	benchCodec(b, codec.JSON[document](), document{Title: "a title of some length", Tags: []string{"x", "y"}})
}

func BenchmarkGob64(b *testing.B) {
	benchCodec(b, codec.Gob[document](), document{Title: "a title of some length", Tags: []string{"x", "y"}})
}

func BenchmarkFrameReader(b *testing.B) {
	for _, size := range []int{64, 4096} {
		var stream []byte
		for range 1000 {
			stream = codec.AppendFrame(stream, 0, make([]byte, size))
		}
		b.Run(sizeLabel(size), func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			r := bytes.NewReader(stream)
			fr := codec.NewFrameReader(r, 0)
			for i := range b.N {
				if i%1000 == 0 {
					r.Reset(stream)
					fr = codec.NewFrameReader(r, 0)
				}
				if _, _, err := fr.ReadFrame(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sizeLabel(n int) string {
	if n >= 1024 {
		return string(rune('0'+n/1024)) + "KiB"
	}
	return "64B"
}

// cReading is a C struct with padding: struct { int id; double value; char unit[8]; }.
type cReading struct {
	ID    int32
	Value float64
	Unit  [8]byte
}

func BenchmarkCStruct24(b *testing.B) {
	c, err := codec.CStruct[cReading]()
	if err != nil {
		b.Fatal(err)
	}
	benchCodec(b, c, cReading{ID: 1, Value: 2})
}

func BenchmarkCStructString(b *testing.B) {
	type reading struct {
		ID    int32
		Value float64
		Unit  string `c:"char[8]"`
	}
	c, err := codec.CStruct[reading]()
	if err != nil {
		b.Fatal(err)
	}
	benchCodec(b, c, reading{ID: 1, Value: 2, Unit: "degC"})
}
