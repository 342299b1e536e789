package endpoints

import (
	"encoding/binary"
	"errors"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// alignedMem returns n bytes starting on a 64-byte boundary, as a mapping's
// memory does.
func alignedMem(n int) []byte {
	b := make([]byte, n+64)
	off := (64 - int(uintptr(unsafe.Pointer(&b[0]))%64)) % 64
	return b[off : off+n]
}

// readAll drains what a ring's reader would take from mem, as the
// receiver does, and returns the first error other than "empty".
func readAll(t *testing.T, mem []byte) error {
	rm, err := openRing(mem)
	if err != nil {
		return err
	}
	r := &ringEnd{r: rm}
	for range 10000 {
		switch err := r.tryRead(); {
		case err == unix.EAGAIN:
			return nil
		case err != nil:
			return err
		}
		if r.cur.kind == msgMarker {
			return nil
		}
		// The payload must lie inside the data area.
		p := r.cur.body
		start := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
		data := uintptr(unsafe.Pointer(&rm.data[0]))
		if len(p) > 0 && (start < data || start+uintptr(len(p)) > data+uintptr(len(rm.data))) {
			t.Fatalf("a payload outside the data area")
		}
		r.advance(r.curEnd)
	}
	return nil
}

// FuzzRingReader feeds the reader arbitrary mapping contents: a buggy or
// hostile peer may write anything there. The reader must return records
// inside the data area or an error, never panic, and never loop for ever.
func FuzzRingReader(f *testing.F) {
	const size = ringHeader + 1024
	valid := alignedMem(size)
	formatRing(valid, 0)
	f.Add(append([]byte(nil), valid...))
	// A ring holding two records and a pad.
	withRecords := append([]byte(nil), valid...)
	data := withRecords[ringHeader:]
	binary.NativeEndian.PutUint32(data[0:], 5)
	binary.NativeEndian.PutUint32(data[4:], 7)
	copy(data[8:], "hello")
	binary.NativeEndian.PutUint32(data[16:], recEOS)
	binary.NativeEndian.PutUint64(withRecords[offHead:], 24)
	f.Add(withRecords)
	f.Add([]byte("IPCCRING"))
	f.Fuzz(func(t *testing.T, contents []byte) {
		mem := alignedMem(size)
		copy(mem, contents)
		readAll(t, mem)
	})
}

// Each kind of damage a peer could do to the header or a record is a
// clear error wrapping ErrCorrupt or ErrMappingSize.
func TestRingRefusesCorruption(t *testing.T) {
	const size = ringHeader + 1024
	fresh := func() []byte {
		mem := alignedMem(size)
		formatRing(mem, 0)
		return mem
	}
	cases := []struct {
		name   string
		damage func(mem []byte) []byte
		want   error
	}{
		{"wrong magic", func(m []byte) []byte { copy(m, "NOTARING"); return m }, ErrCorrupt},
		{"wrong version", func(m []byte) []byte { binary.NativeEndian.PutUint32(m[offVersion:], 9); return m }, ErrCorrupt},
		{"capacity not the mapping's", func(m []byte) []byte { binary.NativeEndian.PutUint64(m[offCapacity:], 4096); return m }, ErrCorrupt},
		{"record limit over the ring", func(m []byte) []byte { binary.NativeEndian.PutUint32(m[offMaxRecord:], 4096); return m }, ErrCorrupt},
		{"mapping too small", func(m []byte) []byte { return m[:ringHeader+8] }, ErrMappingSize},
		{"head past tail plus capacity", func(m []byte) []byte { binary.NativeEndian.PutUint64(m[offHead:], 4096); return m }, ErrCorrupt},
		{"head behind tail", func(m []byte) []byte { binary.NativeEndian.PutUint64(m[offTail:], 64); return m }, ErrCorrupt},
		{"record past the end", func(m []byte) []byte {
			binary.NativeEndian.PutUint32(m[ringHeader:], 900)
			binary.NativeEndian.PutUint64(m[offHead:], 64)
			return m
		}, ErrCorrupt},
		{"record longer than committed", func(m []byte) []byte {
			binary.NativeEndian.PutUint32(m[ringHeader:], 100)
			binary.NativeEndian.PutUint64(m[offHead:], 16)
			return m
		}, ErrCorrupt},
	}
	for _, c := range cases {
		if err := readAll(t, c.damage(fresh())); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if err := readAll(t, fresh()); err != nil {
		t.Fatalf("a fresh ring: %v", err)
	}
}
