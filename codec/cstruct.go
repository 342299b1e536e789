package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"unsafe"
)

// CStruct returns a codec that encodes T in exactly the bytes a C compiler
// on this platform lays out for the equivalent struct: fields in order at
// their C ABI alignment, with the padding between them and at the end,
// integers and floats in the machine's byte order. It is how a Go program
// reads and writes the structs an existing C program sends.
//
// T is a struct (or an array) of bool (C _Bool), int8…int64, uint8…uint64,
// float32, float64, complex64, complex128, arrays and structs of them. A
// string field tagged `c:"char[N]"` is a C char[N]: encoded NUL-padded (a
// string of N bytes or more, or one holding a NUL, is refused with an error
// wrapping ErrEncode, since C would read it truncated), decoded up to its
// first NUL. Blank (_) fields are padding: zeros out, ignored in.
//
// CStruct returns an error wrapping ErrUnsupportedType, naming the field,
// for anything without a fixed C layout: int, uint and uintptr (write
// int64 for a C long, int32 for an int), untagged strings, slices, maps,
// pointers, interfaces. Decode requires exactly Size bytes unless
// AllowShort or AllowTrailing say otherwise. Encoding allocates nothing;
// decoding allocates only the strings. Safe for concurrent use.
func CStruct[T any](opts ...CStructOption) (Codec[T], error) {
	var o cOptions
	for _, opt := range opts {
		opt(&o)
	}
	p, _, err := cPlan(reflect.TypeFor[T]())
	if err != nil {
		return nil, err
	}
	return &cstructCodec[T]{plan: p, opt: o}, nil
}

// A CStructOption relaxes what a CStruct codec's Decode accepts.
type CStructOption func(*cOptions)

type cOptions struct {
	short, trailing bool
}

// AllowShort makes Decode accept a message shorter than the struct, reading
// the missing tail as zeros: a C peer that sends only the used part of a
// buffer, or an older, shorter version of the struct.
func AllowShort() CStructOption { return func(o *cOptions) { o.short = true } }

// AllowTrailing makes Decode accept a message longer than the struct and
// ignore the bytes past it: a C peer that sends a whole fixed buffer
// holding a smaller struct.
func AllowTrailing() CStructOption { return func(o *cOptions) { o.trailing = true } }

// ErrEncode is wrapped by errors for a value a codec cannot encode.
var ErrEncode = errors.New("codec: value cannot be encoded")

type cstructCodec[T any] struct {
	plan *plan
	opt  cOptions
}

func (c *cstructCodec[T]) Name() string { return "cstruct" }

// Size returns the C sizeof of T.
func (c *cstructCodec[T]) Size() int { return c.plan.size }

// EncodedSize returns Size: see Sizer.
func (c *cstructCodec[T]) EncodedSize(T) (int, bool) { return c.plan.size, true }

func (c *cstructCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	n := len(dst)
	dst = slices.Grow(dst, c.plan.size)[:n+c.plan.size]
	if err := c.plan.encode(dst[n:], unsafe.Pointer(&v)); err != nil {
		return dst[:n], err
	}
	return dst, nil
}

func (c *cstructCodec[T]) Decode(data []byte, v *T) error {
	size := c.plan.size
	switch {
	case len(data) > size && c.opt.trailing:
		data = data[:size]
	case len(data) < size && c.opt.short:
		full := make([]byte, size)
		copy(full, data)
		data = full
	case len(data) != size:
		return fmt.Errorf("%w: a %d-byte C struct, got %d bytes (see AllowShort, AllowTrailing)", ErrDecode, size, len(data))
	}
	c.plan.decode(data, unsafe.Pointer(v))
	return nil
}

// CLayout is where a C compiler on this platform puts a struct's fields,
// as CStructLayout computes it.
type CLayout struct {
	Size, Align int
	Fields      []CField // the leaf fields, in order
}

// CField is one leaf field of a CLayout: a scalar, an array of scalars, or
// a char[N] string. Name is its C designator, such as "hdr.len" or
// "items[2].id".
type CField struct {
	Name         string
	Offset, Size int
}

// CStructLayout returns the C layout CStruct uses for T — for checking it
// against a C header's offsetof and sizeof, or explaining a mismatch. It
// returns CStruct's error for a type without one.
func CStructLayout[T any]() (CLayout, error) {
	p, b, err := cPlan(reflect.TypeFor[T]())
	if err != nil {
		return CLayout{}, err
	}
	return CLayout{Size: p.size, Align: cAlign(reflect.TypeFor[T]()), Fields: b.fields}, nil
}

func cPlan(t reflect.Type) (*plan, *planBuilder, error) {
	if t == nil {
		return nil, nil, fmt.Errorf("%w: interface type has no C layout", ErrUnsupportedType)
	}
	b := &planBuilder{c: true}
	if err := b.add(t, 0, ""); err != nil {
		return nil, nil, err
	}
	p := &plan{size: b.wire, ops: b.ops, big: nativeBig}
	for _, o := range b.ops {
		p.strings = p.strings || o.kind == opCString
	}
	return p, b, nil
}

// addC adds t at its C offset: aligned, and a struct padded at its end.
func (b *planBuilder) addC(t reflect.Type, mem uintptr, path string) error {
	name := strings.TrimPrefix(path, ".")
	switch k := t.Kind(); {
	case k == reflect.Bool:
		b.push(op{kind: opBool, mem: mem, wire: b.wire, n: 1})
		b.wire++
		b.record(name, 1)
	case scalarWidth(k) > 0:
		b.alignTo(cAlign(t))
		b.field(mem, scalarWidth(k), int(t.Size())/scalarWidth(k))
		b.record(name, int(t.Size()))
	case k == reflect.Array && t.Len() == 0:
	case k == reflect.Array && scalarWidth(t.Elem().Kind()) > 0:
		b.alignTo(cAlign(t))
		w := scalarWidth(t.Elem().Kind())
		b.field(mem, w, int(t.Size())/w)
		b.record(name, int(t.Size()))
	case k == reflect.Array:
		for i := range t.Len() {
			if err := b.addC(t.Elem(), mem+uintptr(i)*t.Elem().Size(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case k == reflect.Struct:
		align := cAlign(t)
		b.alignTo(align)
		for i := range t.NumField() {
			f := t.Field(i)
			fpath := path + "." + f.Name
			switch {
			case f.Name == "_":
				sub := planBuilder{c: true}
				if err := sub.addC(f.Type, 0, fpath); err != nil {
					return err
				}
				b.alignTo(cAlign(f.Type))
				b.push(op{kind: opPad, wire: b.wire, n: sub.wire})
				b.wire += sub.wire
			case f.Type.Kind() == reflect.String:
				n, err := charArrayLen(f)
				if err != nil {
					return fmt.Errorf("%w: %s: %v", ErrUnsupportedType, strings.TrimPrefix(fpath, "."), err)
				}
				b.push(op{kind: opCString, mem: mem + f.Offset, wire: b.wire, n: n})
				b.wire += n
				b.record(strings.TrimPrefix(fpath, "."), n)
			default:
				if err := b.addC(f.Type, mem+f.Offset, fpath); err != nil {
					return err
				}
			}
		}
		b.alignTo(align)
	case k == reflect.Int || k == reflect.Uint || k == reflect.Uintptr:
		return fmt.Errorf("%w: %s is %v, whose C counterpart is ambiguous: use int64 for a C long, int32 for an int", ErrUnsupportedType, orType(name, t), t)
	case k == reflect.String:
		return fmt.Errorf("%w: %s is a string outside a struct field: tag a field `c:\"char[N]\"`", ErrUnsupportedType, orType(name, t))
	default:
		return fmt.Errorf("%w: %s is %v, which has no C layout", ErrUnsupportedType, orType(name, t), t)
	}
	return nil
}

func orType(name string, t reflect.Type) string {
	if name == "" {
		return t.String()
	}
	return name
}

// record notes the leaf field of n bytes just added, which ends at the
// current wire offset.
func (b *planBuilder) record(name string, n int) {
	b.fields = append(b.fields, CField{Name: name, Offset: b.wire - n, Size: n})
}

// alignTo pads the wire offset to a multiple of a.
func (b *planBuilder) alignTo(a int) {
	if r := b.wire % a; r != 0 {
		b.push(op{kind: opPad, wire: b.wire, n: a - r})
		b.wire += a - r
	}
}

// cAlign is the C ABI alignment of t on Linux: a scalar's own size (a
// complex number's part size), at most cMaxAlign; an array's element's; a
// struct's largest field's.
func cAlign(t reflect.Type) int {
	switch k := t.Kind(); k {
	case reflect.Complex64, reflect.Complex128:
		return min(scalarWidth(k), cMaxAlign)
	case reflect.Array:
		return cAlign(t.Elem())
	case reflect.Struct:
		a := 1
		for i := range t.NumField() {
			if f := t.Field(i); f.Type.Kind() != reflect.String {
				a = max(a, cAlign(f.Type))
			}
		}
		return a
	default:
		return min(max(scalarWidth(k), 1), cMaxAlign)
	}
}

// cMaxAlign is the largest alignment of a scalar inside a C struct: 8 on
// every Linux ABI Go runs on but i386's System V ABI, where double, long
// long and their kin are 4-aligned in structs.
var cMaxAlign = cMaxAlignOn(runtime.GOARCH)

func cMaxAlignOn(goarch string) int {
	if goarch == "386" {
		return 4
	}
	return 8
}

// charArrayLen reads N from a string field's `c:"char[N]"` tag.
func charArrayLen(f reflect.StructField) (int, error) {
	tag, ok := f.Tag.Lookup("c")
	if !ok {
		return 0, fmt.Errorf("a string field needs a tag `c:\"char[N]\"` to have a C layout")
	}
	num, hasPrefix := strings.CutPrefix(tag, "char[")
	num, hasSuffix := strings.CutSuffix(num, "]")
	if !hasPrefix || !hasSuffix {
		return 0, fmt.Errorf("tag c:%q: want char[N]", tag)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("tag c:%q: want char[N] with N ≥ 1", tag)
	}
	return n, nil
}

// putCString writes s NUL-padded into dst.
func putCString(dst []byte, s string) error {
	if len(s) >= len(dst) {
		return fmt.Errorf("%w: a %d-byte string does not fit char[%d] with its NUL", ErrEncode, len(s), len(dst))
	}
	if i := strings.IndexByte(s, 0); i >= 0 {
		return fmt.Errorf("%w: the string holds a NUL at byte %d, where C would cut it", ErrEncode, i)
	}
	clear(dst[copy(dst, s):])
	return nil
}

// cString returns the bytes of b up to its first NUL.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// CText returns a codec for strings carried as a C char[size] buffer: a
// string is encoded NUL-padded to exactly size bytes (one of size bytes or
// more, or holding a NUL, is refused with an error wrapping ErrEncode), and
// decoded from any number of bytes up to the first NUL. It suits the
// fixed text buffers classic programs write to FIFOs and queues. It panics
// if size < 1. Safe for concurrent use.
func CText(size int) Codec[string] {
	if size < 1 {
		panic(fmt.Sprintf("codec: CText(%d): a buffer needs at least one byte", size))
	}
	return ctextCodec(size)
}

type ctextCodec int

func (c ctextCodec) Name() string { return "ctext" }
func (c ctextCodec) Size() int    { return int(c) }

// EncodedSize returns Size: see Sizer.
func (c ctextCodec) EncodedSize(string) (int, bool) { return int(c), true }

func (c ctextCodec) Append(dst []byte, v string) ([]byte, error) {
	n := len(dst)
	dst = slices.Grow(dst, int(c))[:n+int(c)]
	if err := putCString(dst[n:], v); err != nil {
		return dst[:n], err
	}
	return dst, nil
}

func (c ctextCodec) Decode(data []byte, v *string) error {
	*v = cString(data)
	return nil
}
