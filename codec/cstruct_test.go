package codec_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/internal/ctest"
)

type cInner struct {
	A int8
	B int64
}

// cMixed has padding everywhere C puts some: after a bool, before a
// double, inside and after nested structs, after a char array.
type cMixed struct {
	Flag bool
	X    int32
	Y    int8
	Z    float64
	S    int16
	Name string `c:"char[13]"`
	In   cInner
	Arr  [3]uint16
	Ins  [2]cInner
	C    complex64
	_    [2]byte
	T    uint8
}

const cMixedDecl = `
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <complex.h>
struct inner { int8_t a; int64_t b; };
struct mixed {
	bool flag; int32_t x; int8_t y; double z; int16_t s; char name[13];
	struct inner in; uint16_t arr[3]; struct inner ins[2]; float complex c;
	uint8_t pad_[2]; uint8_t t;
};
`

var cMixedValue = cMixed{
	Flag: true, X: -123456, Y: -7, Z: 2.5, S: 4242, Name: "hello, C",
	In: cInner{A: 1, B: -1 << 40}, Arr: [3]uint16{1, 2, 65535},
	Ins: [2]cInner{{A: 3, B: 4}, {A: 5, B: 6}}, C: complex(1.5, -2), T: 200,
}

const cMixedInit = `
	struct mixed m;
	memset(&m, 0, sizeof m);
	m.flag = true; m.x = -123456; m.y = -7; m.z = 2.5; m.s = 4242;
	strcpy(m.name, "hello, C");
	m.in.a = 1; m.in.b = -(1LL << 40);
	m.arr[0] = 1; m.arr[1] = 2; m.arr[2] = 65535;
	m.ins[0].a = 3; m.ins[0].b = 4; m.ins[1].a = 5; m.ins[1].b = 6;
	m.c = 1.5f - 2.0f * I; m.t = 200;
`

// The layout CStruct computes is gcc's: every field's offsetof and sizeof,
// and the struct's sizeof.
func TestCStructLayoutMatchesGCC(t *testing.T) {
	layout, err := codec.CStructLayout[cMixed]()
	if err != nil {
		t.Fatal(err)
	}
	var src strings.Builder
	src.WriteString(cMixedDecl)
	src.WriteString("int main(void) {\n\tprintf(\"sizeof %zu %zu\\n\", sizeof(struct mixed), _Alignof(struct mixed));\n")
	var want strings.Builder
	fmt.Fprintf(&want, "sizeof %d %d\n", layout.Size, layout.Align)
	for _, f := range layout.Fields {
		cname := cFieldName(f.Name)
		fmt.Fprintf(&src, "\tprintf(\"%s %%zu %%zu\\n\", offsetof(struct mixed, %s), sizeof(((struct mixed *)0)->%s));\n", f.Name, cname, cname)
		fmt.Fprintf(&want, "%s %d %d\n", f.Name, f.Offset, f.Size)
	}
	src.WriteString("\treturn 0;\n}\n")
	bin := ctest.Build(t, "layout", src.String())
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want.String() {
		t.Fatalf("gcc's layout:\n%s\nCStruct's:\n%s", out, want.String())
	}
}

// cFieldName turns a Go field path into the C struct's member names.
func cFieldName(goName string) string {
	r := strings.NewReplacer("Flag", "flag", "X", "x", "Y", "y", "Z", "z", "S", "s", "Name", "name",
		"Ins", "ins", "In", "in", "Arr", "arr", "A", "a", "B", "b", "C", "c", "T", "t")
	return r.Replace(goName)
}

// The bytes CStruct writes are those of the same struct filled in by C, and
// decoding C's bytes gives the Go value back.
func TestCStructBytesMatchGCC(t *testing.T) {
	c, err := codec.CStruct[cMixed]()
	if err != nil {
		t.Fatal(err)
	}
	bin := ctest.Build(t, "bytes", cMixedDecl+`int main(void) {`+cMixedInit+`
	for (size_t i = 0; i < sizeof m; i++) printf("%02x", ((unsigned char *)&m)[i]);
	printf("\n");
	return 0;
}
`)
	out, err := exec.Command(bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	fromC, err := hex.DecodeString(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := c.Append(nil, cMixedValue)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(ours) != hex.EncodeToString(fromC) {
		t.Fatalf("C wrote  %x\nwe wrote %x", fromC, ours)
	}
	var back cMixed
	if err := c.Decode(fromC, &back); err != nil {
		t.Fatal(err)
	}
	if back != cMixedValue {
		t.Fatalf("decoded %+v, want %+v", back, cMixedValue)
	}
	if n := testing.AllocsPerRun(100, func() { ours, _ = c.Append(ours[:0], cMixedValue) }); n != 0 {
		t.Errorf("Append allocates %v times", n)
	}
}

func TestCStructRefusesTypesWithoutCLayout(t *testing.T) {
	check := func(name string, err error, mention string) {
		t.Helper()
		if !errors.Is(err, codec.ErrUnsupportedType) || !strings.Contains(err.Error(), mention) {
			t.Errorf("%s: err = %v, want ErrUnsupportedType naming %q", name, err, mention)
		}
	}
	_, err := codec.CStruct[struct{ N int }]()
	check("int", err, "N")
	_, err = codec.CStruct[struct{ S string }]()
	check("untagged string", err, "S")
	_, err = codec.CStruct[struct {
		S string `c:"char[x]"`
	}]()
	check("bad tag", err, "char[N]")
	// Malformed tags are refused whole, not read as far as they go.
	_, err = codec.CStruct[struct {
		S string `c:"12]"`
	}]()
	check("tag without char[", err, "char[N]")
	_, err = codec.CStruct[struct {
		S string `c:"char[12"`
	}]()
	check("tag without ]", err, "char[N]")
	_, err = codec.CStruct[struct {
		S string `c:"char[0]"`
	}]()
	check("char[0]", err, "char[N]")
	_, err = codec.CStruct[struct{ In struct{ P *int } }]()
	check("pointer", err, "In.P")
	_, err = codec.CStruct[struct{ B []byte }]()
	check("slice", err, "B")
	_, err = codec.CStruct[map[string]int]()
	check("map", err, "map")
}

func TestCStructStringsAndLengths(t *testing.T) {
	type msg struct {
		Type int64
		Text string `c:"char[8]"`
	}
	c, err := codec.CStruct[msg]()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Append(nil, msg{Text: "12345678"}); !errors.Is(err, codec.ErrEncode) {
		t.Errorf("8 bytes into char[8]: %v, want ErrEncode (no room for the NUL)", err)
	}
	if _, err := c.Append(nil, msg{Text: "a\x00b"}); !errors.Is(err, codec.ErrEncode) {
		t.Errorf("a NUL inside: %v, want ErrEncode", err)
	}
	b, err := c.Append(nil, msg{Type: 2, Text: "1234567"})
	if err != nil || len(b) != 16 {
		t.Fatalf("Append = %d bytes, %v", len(b), err)
	}
	var v msg
	if err := c.Decode(b[:12], &v); !errors.Is(err, codec.ErrDecode) {
		t.Errorf("short message: %v, want ErrDecode", err)
	}
	if err := c.Decode(append(b, 9), &v); !errors.Is(err, codec.ErrDecode) {
		t.Errorf("long message: %v, want ErrDecode", err)
	}
	short, _ := codec.CStruct[msg](codec.AllowShort())
	if err := short.Decode(b[:10], &v); err != nil || v.Type != 2 || v.Text != "12" {
		t.Errorf("AllowShort: %+v, %v", v, err)
	}
	trailing, _ := codec.CStruct[msg](codec.AllowTrailing())
	if err := trailing.Decode(append(b, 9, 9), &v); err != nil || v.Text != "1234567" {
		t.Errorf("AllowTrailing: %+v, %v", v, err)
	}
	// A full char array without a NUL (as strncpy leaves it) decodes whole.
	full := append(b[:8:8], "abcdefgh"...)
	if err := c.Decode(full, &v); err != nil || v.Text != "abcdefgh" {
		t.Errorf("unterminated char[8]: %+v, %v", v, err)
	}
}

func TestCText(t *testing.T) {
	c := codec.CText(16)
	b, err := c.Append(nil, "hi")
	if err != nil || len(b) != 16 || string(b[:3]) != "hi\x00" {
		t.Fatalf("Append = %q, %v", b, err)
	}
	var s string
	if err := c.Decode(append([]byte("line"), make([]byte, 8188)...), &s); err != nil || s != "line" {
		t.Errorf("Decode of a padded 8 KiB buffer = %q, %v", s, err)
	}
	if _, err := c.Append(nil, strings.Repeat("x", 16)); !errors.Is(err, codec.ErrEncode) {
		t.Errorf("16 bytes: %v, want ErrEncode", err)
	}
}

func FuzzCStruct(f *testing.F) {
	c, err := codec.CStruct[cMixed](codec.AllowShort(), codec.AllowTrailing())
	if err != nil {
		f.Fatal(err)
	}
	fuzzDecoder(f, c, cMixedValue)
}

func FuzzCText(f *testing.F) { fuzzDecoder(f, codec.CText(32), "hello") }

// An 8-byte scalar after a 4-byte one sits where the machine's C ABI puts
// it: at offset 8 (the struct 8-aligned) on every Linux ABI but i386's,
// where double and long long are 4-aligned inside structs (offset 4). The
// gcc tests above check it wherever gcc can build for GOARCH; this one also
// runs where it cannot (GOARCH=386 without a 32-bit C library).
func TestCStructEightByteAlignment(t *testing.T) {
	type s struct {
		A int32
		B float64
		C int32
		D uint64
	}
	layout, err := codec.CStructLayout[s]()
	if err != nil {
		t.Fatal(err)
	}
	want := codec.CLayout{Size: 32, Align: 8, Fields: []codec.CField{{"A", 0, 4}, {"B", 8, 8}, {"C", 16, 4}, {"D", 24, 8}}}
	if runtime.GOARCH == "386" {
		want = codec.CLayout{Size: 24, Align: 4, Fields: []codec.CField{{"A", 0, 4}, {"B", 4, 8}, {"C", 12, 4}, {"D", 16, 8}}}
	}
	if !reflect.DeepEqual(layout, want) {
		t.Fatalf("CStructLayout on %s = %+v, want %+v (gcc's)", runtime.GOARCH, layout, want)
	}
}
