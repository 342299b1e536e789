package codec_test

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/ipcchan/go/codec"
)

// checkViewer checks that c is a Viewer whose View is exactly what Append
// appends, sharing v's memory.
func checkViewer[T any](t *testing.T, c codec.Codec[T], v T, ptr *byte) {
	t.Helper()
	vw, ok := c.(codec.Viewer[T])
	if !ok {
		t.Fatalf("%s codec %T is not a codec.Viewer", c.Name(), c)
	}
	b, err := c.Append(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	view := vw.View(v)
	if !bytes.Equal(view, b) || unsafe.SliceData(view) != ptr {
		t.Errorf("%s View = %q at %p, want Append's %q at the value's %p", c.Name(), view, unsafe.SliceData(view), b, ptr)
	}
}

// The codecs whose encoding is the value's bytes show them without a copy;
// a []byte's Room is its capacity, and a payload placed there decodes as
// it is, into the same memory. A string has no room.
func TestViewers(t *testing.T) {
	type name string
	type blob []byte
	b := []byte("bytes")
	checkViewer(t, codec.Bytes(), b, &b[0])
	checkViewer(t, mustCodec(codec.Default[[]byte]()), b, &b[0])
	nb := blob("named bytes")
	checkViewer(t, mustCodec(codec.Default[blob]()), nb, &nb[0])
	s := "a string"
	checkViewer(t, codec.String(), s, unsafe.StringData(s))
	ns := name("a named string")
	checkViewer(t, mustCodec(codec.Default[name]()), ns, unsafe.StringData(string(ns)))

	bc := codec.Bytes().(codec.Viewer[[]byte])
	dst := make([]byte, 2, 64)
	room := bc.Room(&dst)
	if len(room) != 64 || &room[0] != &dst[0] {
		t.Fatalf("Room = %d bytes at %p, want the 64 of the destination at %p", len(room), &room[0], &dst[0])
	}
	n := copy(room, "read straight into the room")
	if err := codec.Bytes().Decode(room[:n], &dst); err != nil || string(dst) != "read straight into the room" || &dst[0] != &room[0] {
		t.Fatalf("Decode of the room: %q at %p, %v", dst, &dst[0], err)
	}
	// A payload elsewhere is copied into the destination's memory.
	if err := codec.Bytes().Decode([]byte("elsewhere"), &dst); err != nil || string(dst) != "elsewhere" || &dst[0] != &room[0] {
		t.Fatalf("Decode of other bytes: %q at %p, %v", dst, &dst[0], err)
	}
	nc := mustCodec(codec.Default[blob]())
	nd := make(blob, 0, 32)
	nroom := nc.(codec.Viewer[blob]).Room(&nd)
	n = copy(nroom, "named room")
	if err := nc.Decode(nroom[:n], &nd); err != nil || string(nd) != "named room" || &nd[0] != &nroom[0] {
		t.Fatalf("named Decode of the room: %q, %v", nd, err)
	}
	var str string
	if r := codec.String().(codec.Viewer[string]).Room(&str); r != nil {
		t.Errorf("a string's Room = %d bytes, want none", len(r))
	}
}
