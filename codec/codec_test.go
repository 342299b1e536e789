package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
)

func roundTrip[T any](t *testing.T, c codec.Codec[T], v T) T {
	t.Helper()
	b, err := c.Append([]byte("prefix"), v)
	if err != nil {
		t.Fatalf("%s Append(%v): %v", c.Name(), v, err)
	}
	if !bytes.HasPrefix(b, []byte("prefix")) {
		t.Fatalf("%s Append overwrote dst", c.Name())
	}
	var got T
	if err := c.Decode(b[len("prefix"):], &got); err != nil {
		t.Fatalf("%s Decode: %v", c.Name(), err)
	}
	return got
}

func TestBytesAndString(t *testing.T) {
	if got := roundTrip(t, codec.Bytes(), []byte("hello")); string(got) != "hello" {
		t.Fatalf("bytes: %q", got)
	}
	if got := roundTrip(t, codec.String(), "héllo\xff"); got != "héllo\xff" {
		t.Fatalf("string: %q", got)
	}
	// Decode reuses the capacity it is given.
	buf := make([]byte, 0, 64)
	if err := codec.Bytes().Decode([]byte("abc"), &buf); err != nil || string(buf) != "abc" || cap(buf) != 64 {
		t.Fatalf("Decode into a reused slice: %q cap %d, %v", buf, cap(buf), err)
	}
}

type fixed struct {
	A  bool
	B  int8
	C  uint16
	_  [3]byte
	D  int32
	E  float32
	F  uint64
	G  [3]int16
	H  complex64
	I  inner
	J  [2]inner
	K  [4]bool
	L  complex128
	M  float64
	NN [5]uint8
}

type inner struct {
	X uint32
	Y [2]float64
	Z bool
}

func sampleFixed() fixed {
	return fixed{
		A: true, B: -3, C: 0xBEEF, D: -123456, E: 1.5, F: 0x0102030405060708,
		G: [3]int16{-1, 2, -3}, H: complex(1, -2),
		I: inner{X: 7, Y: [2]float64{math.Pi, math.Inf(-1)}, Z: true},
		J: [2]inner{{X: 1}, {X: 2, Z: true}},
		K: [4]bool{true, false, true, true}, L: complex(-0.5, 8), M: math.MaxFloat64,
		NN: [5]uint8{1, 2, 3, 4, 5},
	}
}

func TestBinaryMatchesEncodingBinary(t *testing.T) {
	for _, order := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian, binary.NativeEndian} {
		c, err := codec.Binary[fixed](order)
		if err != nil {
			t.Fatal(err)
		}
		v := sampleFixed()
		got, err := c.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		want, err := binary.Append(nil, order, v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: Binary wrote\n%x\nencoding/binary writes\n%x", order, got, want)
		}
		if n := c.(codec.SizedCodec).Size(); n != binary.Size(v) {
			t.Fatalf("Size = %d, binary.Size = %d", n, binary.Size(v))
		}
		if back := roundTrip(t, c, v); back != v {
			t.Fatalf("%v: round trip %+v", order, back)
		}
	}
}

func TestBinaryRefusesTypesWithoutFixedSize(t *testing.T) {
	type withInt struct {
		A int32
		B int
	}
	type withSlice struct{ Inner struct{ S []byte } }
	if _, err := codec.Binary[withInt](binary.LittleEndian); !errors.Is(err, codec.ErrUnsupportedType) || !strings.Contains(err.Error(), ".B") {
		t.Errorf("int field: %v", err)
	}
	if _, err := codec.Binary[withSlice](binary.LittleEndian); !errors.Is(err, codec.ErrUnsupportedType) || !strings.Contains(err.Error(), "Inner.S") {
		t.Errorf("slice field: %v", err)
	}
	if _, err := codec.Binary[string](binary.LittleEndian); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Errorf("string: %v", err)
	}
	if _, err := codec.Binary[int64](nil); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Errorf("nil order: %v", err)
	}
}

func TestBinaryDecodeChecksLength(t *testing.T) {
	c, _ := codec.Binary[uint32](binary.BigEndian)
	var v uint32
	for _, n := range []int{0, 3, 5} {
		if err := c.Decode(make([]byte, n), &v); !errors.Is(err, codec.ErrDecode) {
			t.Errorf("%d bytes: %v", n, err)
		}
	}
	if err := c.Decode([]byte{1, 2, 3, 4}, &v); err != nil || v != 0x01020304 {
		t.Fatalf("Decode = %#x, %v", v, err)
	}
}

// A type that encodes itself, with value receivers for encoding.
type stamp struct{ Sec, Nsec int64 }

func (s stamp) AppendBinary(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, uint64(s.Sec))
	return binary.BigEndian.AppendUint64(b, uint64(s.Nsec)), nil
}

func (s *stamp) UnmarshalBinary(b []byte) error {
	if len(b) != 16 {
		return errors.New("stamp: want 16 bytes")
	}
	s.Sec, s.Nsec = int64(binary.BigEndian.Uint64(b)), int64(binary.BigEndian.Uint64(b[8:]))
	return nil
}

func TestAppender(t *testing.T) {
	c, err := codec.Appender[stamp]()
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, stamp{1, 2}); got != (stamp{1, 2}) {
		t.Fatalf("round trip %+v", got)
	}
	var s stamp
	err = c.Decode([]byte("short"), &s)
	if !errors.Is(err, codec.ErrDecode) || !strings.Contains(err.Error(), "want 16 bytes") {
		t.Fatalf("bad input: %v", err)
	}
	// Pointer types work too, allocating the element on decode.
	pc, err := codec.Appender[*stamp]()
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, pc, &stamp{3, 4}); *got != (stamp{3, 4}) {
		t.Fatalf("pointer round trip %+v", got)
	}
	// A standard library type with MarshalBinary.
	tc, err := codec.Appender[time.Time]()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Round(0)
	if got := roundTrip(t, tc, now); !got.Equal(now) {
		t.Fatalf("time round trip %v != %v", got, now)
	}
	if _, err := codec.Appender[int64](); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Fatalf("Appender[int64] = %v", err)
	}
}

type document struct {
	Title string
	Tags  []string
	Meta  map[string]int
	Next  *document
}

func TestJSONAndGob(t *testing.T) {
	doc := document{Title: "a", Tags: []string{"x"}, Meta: map[string]int{"k": 1}, Next: &document{Title: "b"}}
	for _, c := range []codec.Codec[document]{codec.JSON[document](), codec.Gob[document]()} {
		if got := roundTrip(t, c, doc); !reflect.DeepEqual(got, doc) {
			t.Fatalf("%s round trip %+v", c.Name(), got)
		}
		// Decode resets the value: nothing of an earlier message survives.
		v := document{Title: "stale", Tags: []string{"stale"}}
		b, _ := c.Append(nil, document{Title: "fresh"})
		if err := c.Decode(b, &v); err != nil || v.Tags != nil || v.Title != "fresh" {
			t.Fatalf("%s Decode kept stale fields: %+v, %v", c.Name(), v, err)
		}
		if err := c.Decode([]byte("\x00garbage{"), &v); !errors.Is(err, codec.ErrDecode) {
			t.Fatalf("%s garbage: %v", c.Name(), err)
		}
	}
}

type ID string
type Blob []byte

func TestDefaultChoices(t *testing.T) {
	check := func(name string, got string, err error) {
		t.Helper()
		if err != nil || got != name {
			t.Errorf("Default picked %q (%v), want %q", got, err, name)
		}
	}
	c1, err := codec.Default[[]byte]()
	check("bytes", c1.Name(), err)
	c2, err := codec.Default[string]()
	check("string", c2.Name(), err)
	c3, err := codec.Default[ID]()
	check("string", c3.Name(), err)
	c4, err := codec.Default[Blob]()
	check("bytes", c4.Name(), err)
	c5, err := codec.Default[fixed]()
	check("binary-le", c5.Name(), err)
	c6, err := codec.Default[stamp]()
	check("binary-marshaler", c6.Name(), err)
	c7, err := codec.Default[document]()
	check("gob", c7.Name(), err)
	c8, err := codec.Default[netip.Addr]()
	check("binary-marshaler", c8.Name(), err)

	if got := roundTrip(t, c3, ID("id-7")); got != "id-7" {
		t.Fatalf("named string: %q", got)
	}
	if got := roundTrip(t, c4, Blob("blob")); string(got) != "blob" {
		t.Fatalf("named bytes: %q", got)
	}
	//lint:ignore U1000 the unexported field is what makes the type unencodable
	type hidden struct{ a int }
	for _, err := range []error{
		func() error { _, err := codec.Default[chan int](); return err }(),
		func() error { _, err := codec.Default[func()](); return err }(),
		func() error { _, err := codec.Default[hidden](); return err }(),
		func() error { _, err := codec.Default[struct{ C chan int }](); return err }(),
	} {
		if !errors.Is(err, codec.ErrUnsupportedType) {
			t.Errorf("Default of an unencodable type: %v", err)
		}
	}
}

func TestZeroAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	buf := make([]byte, 0, 4096)
	payload := bytes.Repeat([]byte("x"), 1024)
	var out []byte
	bc := codec.Bytes()
	fc, _ := codec.Binary[fixed](binary.LittleEndian)
	fcBig, _ := codec.Binary[fixed](binary.BigEndian)
	ac, _ := codec.Appender[stamp]()
	v := sampleFixed()
	var got fixed
	var st stamp
	cases := map[string]func(){
		"bytes": func() {
			b, _ := bc.Append(buf[:0], payload)
			bc.Decode(b, &out)
		},
		"string-append": func() { codec.String().Append(buf[:0], "hello") },
		"binary-le": func() {
			b, _ := fc.Append(buf[:0], v)
			fc.Decode(b, &got)
		},
		"binary-be": func() {
			b, _ := fcBig.Append(buf[:0], v)
			fcBig.Decode(b, &got)
		},
		"appender": func() {
			b, _ := ac.Append(buf[:0], stamp{1, 2})
			ac.Decode(b, &st)
		},
	}
	out = make([]byte, 0, 2048)
	for name, f := range cases {
		if n := testing.AllocsPerRun(200, f); n != 0 {
			t.Errorf("%s: %v allocations per run", name, n)
		}
	}
}
