package clients_test

import (
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/ctest"
	"github.com/ipcchan/go/ipcchan"
)

// The Go side of c/peers/c_types.c's shapes, field for field.
type (
	cVec struct {
		ID   uint32
		Temp float64
	}
	cBlank struct {
		_ int32
		X uint8
	}
	cScalars struct {
		B   bool
		I8  int8
		I16 int16
		I32 int32
		I64 int64
		U8  uint8
		U16 uint16
		U32 uint32
		U64 uint64
		F32 float32
		F64 float64
	}
	cArrays struct {
		V [3]float32
		N [2]int16
	}
	cNested struct {
		Hdr struct {
			Len  uint16
			Kind uint8
		}
		Body [4]uint32
	}
	cPoint  struct{ X, Y int32 }
	cPoints struct {
		P     [2]cPoint
		Count uint8
	}
	cChars struct {
		ID   int32
		Name [8]byte
	}
	cReading struct {
		ID    int32
		Value float64
		Unit  string `c:"char[8]"`
	}
	cFlags struct {
		Flags [3]bool
		T     int64
	}
	cDeep struct {
		A struct {
			B struct{ C uint64 }
			D int8
		}
		E uint16
	}
	cPadded struct {
		A uint8
		B uint64
		C uint8
		D uint32
	}
	cGap struct {
		A uint16
		_ [2]uint8
		B uint32
	}
)

// cShape is one shape of c_types.c: its Go type, the sample value the C
// program packs, and the codecs it applies to.
type cShape struct {
	name   string
	typ    reflect.Type
	encode func(order string) (string, bool) // hex of the sample under a codec, false if none
}

func shapeOf[T any](tb testing.TB, name string, sample T) cShape {
	return cShape{name: name, typ: reflect.TypeFor[T](), encode: func(order string) (string, bool) {
		var c codec.Codec[T]
		var err error
		switch order {
		case "binary-le":
			c, err = codec.Binary[T](binary.LittleEndian)
		case "binary-be":
			c, err = codec.Binary[T](binary.BigEndian)
		default:
			c, err = codec.CStruct[T]()
		}
		if err != nil {
			return "-", false
		}
		if c.Name() != order {
			tb.Fatalf("%s: codec %q, want %q", name, c.Name(), order)
		}
		b, err := c.Append(nil, sample)
		if err != nil {
			tb.Fatalf("%s %s: %v", name, order, err)
		}
		if len(b) == 0 {
			return ".", true
		}
		return hex.EncodeToString(b), true
	}}
}

func cShapes(tb testing.TB) []cShape {
	var nested cNested
	nested.Hdr.Len, nested.Hdr.Kind, nested.Body = 513, 9, [4]uint32{1, 2, 0xdeadbeef, 4}
	var deep cDeep
	deep.A.B.C, deep.A.D, deep.E = 0x0102030405060708, -3, 65535
	return []cShape{
		shapeOf(tb, "vec", cVec{7, -21.5}),
		shapeOf(tb, "blank", cBlank{X: 200}),
		shapeOf(tb, "scalars", cScalars{true, -8, -1600, -320000, -6400000000, 8, 1600, 3200000000, 6400000000000000000, 1.5, -2.25}),
		shapeOf(tb, "arrays", cArrays{[3]float32{1, -2, 0.5}, [2]int16{-1, 32767}}),
		shapeOf(tb, "nested", nested),
		shapeOf(tb, "points", cPoints{[2]cPoint{{-1, 2}, {3, -4}}, 2}),
		shapeOf(tb, "chars", cChars{42, [8]byte{'a', 'b', 0, 'x', 'y', 'z', 0, 1}}),
		shapeOf(tb, "reading", cReading{3, 22.5, "degC"}),
		shapeOf(tb, "flags", cFlags{[3]bool{true, false, true}, -1}),
		shapeOf(tb, "deep", deep),
		shapeOf(tb, "padded", cPadded{1, 2, 3, 4}),
		shapeOf(tb, "gap", cGap{A: 0x1234, B: 0x56789abc}),
	}
}

// For a dozen C structs described with ipcchan.h, the C description and
// fingerprint are Go's (ipcchan.TypeDescription, ipcchan.Fingerprint) for
// the same Go struct, and the C encodings of a sample value under
// binary-le, binary-be and cstruct are the bytes Go's codecs write for the
// same value; the literal descriptions hash to PROTOCOL.md §4's vectors.
func TestCTypesMatchGo(t *testing.T) {
	out, err := exec.Command(cProgram(t, "c_types")).Output()
	if err != nil {
		t.Fatalf("c_types: %v\n%s", err, out)
	}
	lines := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), "\t")
		if len(f) == 1 {
			f = strings.Fields(f[0])
		}
		if f[0] == "literal" {
			lines["literal "+f[1]] = f[2:]
			continue
		}
		lines[f[0]] = f[1:]
	}
	for _, s := range cShapes(t) {
		got := lines[s.name]
		if len(got) != 5 {
			t.Errorf("%s: C printed %q", s.name, got)
			continue
		}
		if want := ipcchan.TypeDescription(s.typ); got[0] != want {
			t.Errorf("%s: C description %s, Go %s", s.name, got[0], want)
		}
		if want := hexFP(ipcchan.Fingerprint(s.typ)); got[1] != want {
			t.Errorf("%s: C fingerprint %s, Go %s", s.name, got[1], want)
		}
		for i, c := range []string{"binary-le", "binary-be", "cstruct"} {
			want, _ := s.encode(c)
			if got[2+i] != want {
				t.Errorf("%s %s: C packed %s, Go encodes %s", s.name, c, got[2+i], want)
			}
		}
	}
	for desc, fp := range map[string]string{
		"[]uint8": "27e5d96ac8cedf7b", "string": "704be0d8faaffc58", "int64": "f9d0c88f42834344",
		"[4]float32": "7217e2fec1d42cc0", "map[string]int": "16ad61124846fd57",
	} {
		if got := lines["literal "+desc]; len(got) != 1 || got[0] != fp {
			t.Errorf("C fingerprint of %s: %v, want %s (PROTOCOL.md §4)", desc, got, fp)
		}
	}
	for name, want := range map[string]string{
		"small": "ERANGE", "outside": "EINVAL", "fullstring": "EINVAL", "stringbinary": "EINVAL",
		"shortbuf": "EMSGSIZE", "shortin": "EBADMSG", "ctextfull": "EMSGSIZE",
	} {
		if got := lines[name]; len(got) != 2 || got[0] != "-1" || got[1] != want {
			t.Errorf("C %s: %v, want -1 %s", name, got, want)
		}
	}
	text, _ := codec.CText(8).Append(nil, "hello")
	if got := lines[hex.EncodeToString(text)]; strings.Join(got, " ") != "ctext 5 hello" {
		t.Errorf("C ctext of hello: %v, want Go's %x", lines, text)
	}
}

// What Go encodes, C unpacks and packs again to the same bytes, for every
// shape and codec: C reads every field where Go put it.
func TestCTypesRoundTripGoValues(t *testing.T) {
	bin := cProgram(t, "c_types")
	for _, s := range cShapes(t) {
		for _, c := range []string{"binary-le", "binary-be", "cstruct"} {
			want, ok := s.encode(c)
			if !ok {
				continue
			}
			out, err := exec.Command(bin, "roundtrip", s.name, c, want).Output()
			if err != nil {
				t.Fatalf("%s %s: %v", s.name, c, err)
			}
			if got := strings.TrimSpace(string(out)); got != want {
				t.Errorf("%s %s: Go %s came back from C as %s", s.name, c, want, got)
			}
		}
	}
}

func hexFP(fp uint64) string {
	return hex.EncodeToString(binary.BigEndian.AppendUint64(nil, fp))
}

// Nothing on the C message path allocates: c_noalloc, linked with malloc,
// calloc and realloc wrapped to count, sends and receives 100 messages on
// every kind of end (pipe, unixgram, seqpacket, POSIX and SysV queues) and
// counts no allocation between init and close.
// (Not through cProgram: it needs the --wrap link flags.)
func TestCNoAllocation(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("c", "peers", "c_noalloc.c"))
	if err != nil {
		t.Fatal(err)
	}
	include, _ := filepath.Abs("c")
	bin := ctest.Build(t, "c_noalloc", string(src), "-std=c11", "-Wextra", "-Werror", "-I", include,
		"-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc", "-lrt")
	name := endpoints.ObjectName("c-noalloc")
	t.Cleanup(func() { endpoints.RemoveMQ(name) })
	out, err := exec.Command(bin, name).CombinedOutput()
	if err != nil {
		t.Fatalf("c_noalloc: %v\n%s", err, out)
	}
	want := "pipe allocations 0\nunixgram allocations 0\nseqpacket allocations 0\nposix allocations 0\nsysv allocations 0"
	if got := strings.TrimSpace(string(out)); got != want {
		t.Errorf("allocations on the C message path:\n%s\nwant\n%s", got, want)
	}
}
