package codec_test

import (
	"encoding/binary"
	"testing"

	"github.com/ipcchan/go/codec"
)

// checkSizer checks that c is a Sizer whose EncodedSize is exactly what
// Append appends, for every value of vs.
func checkSizer[T any](t *testing.T, c codec.Codec[T], vs ...T) {
	t.Helper()
	s, ok := c.(codec.Sizer[T])
	if !ok {
		t.Fatalf("%s codec %T is not a codec.Sizer", c.Name(), c)
	}
	for _, v := range vs {
		n, ok := s.EncodedSize(v)
		b, err := c.Append([]byte("prefix"), v)
		if err != nil {
			t.Fatalf("%s Append(%v): %v", c.Name(), v, err)
		}
		if !ok || n != len(b)-len("prefix") {
			t.Errorf("%s EncodedSize(%v) = %d, %v; Append appended %d bytes", c.Name(), v, n, ok, len(b)-len("prefix"))
		}
	}
}

// mustCodec returns c, and panics if its constructor failed.
func mustCodec[T any](c codec.Codec[T], err error) codec.Codec[T] {
	if err != nil {
		panic(err)
	}
	return c
}

// The codecs that know a value's encoded length say it exactly: the bytes
// and strings (also named ones, through Default), and the fixed sizes.
func TestSizers(t *testing.T) {
	type name string
	type blob []byte
	type point struct {
		X, Y int32
		Tag  string `c:"char[6]"`
	}
	checkSizer(t, codec.Bytes(), nil, []byte{}, []byte("abc"), make([]byte, 70000))
	checkSizer(t, codec.String(), "", "héllo")
	checkSizer(t, mustCodec(codec.Default[[]byte]()), []byte("xyz"))
	checkSizer(t, mustCodec(codec.Default[string]()), "xyz")
	checkSizer(t, mustCodec(codec.Default[name]()), "", "named")
	checkSizer(t, mustCodec(codec.Default[blob]()), nil, blob("named bytes"))
	checkSizer(t, mustCodec(codec.Default[[3]uint16]()), [3]uint16{1, 2, 3})
	checkSizer(t, mustCodec(codec.Binary[[2]float64](binary.BigEndian)), [2]float64{1, 2})
	checkSizer(t, mustCodec(codec.CStruct[point]()), point{1, 2, "ab"}, point{})
	checkSizer(t, codec.CText(16), "", "fifteen bytes!!")
}
