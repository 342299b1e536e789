package endpoints

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"strings"
	"unsafe"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
)

// CView is typed access to a C struct at a fixed offset in a [Mapping],
// laid out as the C-layout codec ([codec.CStruct], [codec.CStructLayout])
// says a C compiler lays it out: fields at their C ABI offsets, a string
// field tagged `c:"char[N]"` as a C char[N]. It is the shared-memory
// counterpart of the messages codec.CStruct encodes: the same Go type, the
// same tags, the same bytes.
//
// Load and Store go field by field through the codec's layout, which is
// what the C program sees whatever Go's own layout of T is: a string field
// cannot live in shared memory (a Go string is a pointer), and Go pads some
// structs differently from C (a trailing zero-length array). Store checks
// every string first and writes nothing if one does not fit. Where T's Go
// layout is exactly its C layout (no string fields, every field at its C
// offset, the same size), [CView.Update] also hands out a *T into the
// shared memory, for atomic operations on its fields.
//
// A peer may rewrite the memory at any time: Load never panics on what it
// finds there (a bool is true for any non-zero byte, a char[N] is read up
// to its first NUL, or whole without one), and on a mapping a peer can
// shrink every access runs under the fault guard of [View.Update]. Its
// methods are safe for concurrent use; neither Load nor Store is atomic as
// a whole.
type CView[T any] struct {
	m      *Mapping
	off    int
	layout codec.CLayout
	steps  []cStep
	direct string // why T's Go layout is not its C layout; "" if it is
}

// cStep moves one run of bytes between the value (at mem) and the shared
// memory (at off), n bytes long.
type cStep struct {
	kind cStepKind
	mem  uintptr
	off  int
	n    int
}

type cStepKind uint8

const (
	cCopy   cStepKind = iota // n bytes as they are
	cBool                    // one byte: any non-zero is true, stored as 0 or 1
	cString                  // a Go string as a C char[n]
)

// CViewOf returns a view of the C struct T at offset in m. T is any type
// codec.CStruct accepts; CViewOf returns its error (wrapping
// codec.ErrUnsupportedType, naming the field) for one it refuses. offset
// must be aligned for the C struct (its _Alignof) and the C struct's
// sizeof bytes must fit in the mapping.
func CViewOf[T any](m *Mapping, offset int) (*CView[T], error) {
	t := reflect.TypeFor[T]()
	desc := m.String()
	layout, err := codec.CStructLayout[T]()
	if err != nil {
		return nil, &ipcchan.OpError{Op: "view", Endpoint: desc, Err: fmt.Errorf("%v has no C layout: %w", t, err)}
	}
	switch {
	case offset < 0 || offset > m.Len()-layout.Size:
		return nil, &ipcchan.OpError{Op: "view", Endpoint: desc, Err: fmt.Errorf("%w: a %d-byte C struct at offset %d of %d", ErrMappingSize, layout.Size, offset, m.Len())}
	case offset%layout.Align != 0:
		return nil, &ipcchan.OpError{Op: "view", Endpoint: desc, Err: fmt.Errorf("offset %d is not aligned for the C struct %v (%d)", offset, t, layout.Align)}
	}
	steps, direct, err := cSteps(t, layout)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "view", Endpoint: desc, Err: err}
	}
	if direct == "" && offset%t.Align() != 0 {
		direct = fmt.Sprintf("offset %d is not aligned for Go's %v (%d)", offset, t, t.Align())
	}
	return &CView[T]{m: m, off: offset, layout: layout, steps: steps, direct: direct}, nil
}

// Layout returns the C layout the view reads and writes: the offsets and
// sizes of T's fields from the start of the struct (add the view's offset
// for the mapping's), as codec.CStructLayout computes them.
func (v *CView[T]) Layout() codec.CLayout { return v.layout }

// Load returns a copy of the struct, read field by field through the C
// layout (strings and only they allocate), or the error of Update's guard:
// os.ErrClosed after the mapping is closed, ErrCorrupt once its memory is
// gone.
func (v *CView[T]) Load() (T, error) {
	var x T
	err := v.access(func(mem []byte) {
		p := unsafe.Pointer(&x)
		for _, s := range v.steps {
			at := unsafe.Add(p, s.mem)
			switch s.kind {
			case cCopy:
				copy(unsafe.Slice((*byte)(at), s.n), mem[s.off:s.off+s.n])
			case cBool:
				*(*bool)(at) = mem[s.off] != 0
			case cString:
				*(*string)(at) = loadCString(mem[s.off : s.off+s.n])
			}
		}
	})
	return x, err
}

// loadCString reads a char array that a peer may be rewriting: up to its
// first NUL, or whole without one. The bytes are looked at once for the
// NUL and copied after, so a NUL that appeared in between is cut at too.
func loadCString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		s = s[:i]
	}
	return s
}

// Store writes every field T names through the C layout: a char[N] string
// NUL-padded, a bool as 0 or 1. Padding and blank (_) fields keep their
// bytes, so fields a C peer has and T leaves blank are not overwritten. A
// string of N bytes or more, or holding a NUL, is refused with an error
// wrapping codec.ErrEncode before anything is written. Otherwise it
// returns the error of Load. It does not allocate.
func (v *CView[T]) Store(x T) error {
	if v == nil || !v.m.made() {
		return errNotMade("view", "CView", "CViewOf")
	}
	p := unsafe.Pointer(&x)
	for _, s := range v.steps {
		if s.kind != cString {
			continue
		}
		str := *(*string)(unsafe.Add(p, s.mem))
		if len(str) >= s.n {
			return v.m.opErr("view", fmt.Errorf("%w: a %d-byte string does not fit char[%d] with its NUL", codec.ErrEncode, len(str), s.n))
		}
		if i := strings.IndexByte(str, 0); i >= 0 {
			return v.m.opErr("view", fmt.Errorf("%w: the string holds a NUL at byte %d, where C would cut it", codec.ErrEncode, i))
		}
	}
	return v.access(func(mem []byte) {
		for _, s := range v.steps {
			at := unsafe.Add(p, s.mem)
			switch s.kind {
			case cCopy:
				copy(mem[s.off:s.off+s.n], unsafe.Slice((*byte)(at), s.n))
			case cBool:
				mem[s.off] = 0
				if *(*bool)(at) {
					mem[s.off] = 1
				}
			case cString:
				clear(mem[s.off+copy(mem[s.off:s.off+s.n], *(*string)(at)) : s.off+s.n])
			}
		}
	})
}

// Update calls f with a pointer to the struct in shared memory, as
// [View.Update] does (under the same fault guard, with the same errors),
// for a T whose Go layout is its C layout. For another T it returns an
// error wrapping ipcchan.ErrNotSupported that says why (use Load and
// Store). A peer may write any byte into a bool field, which Go reads as
// neither true nor false: read bools with Load.
func (v *CView[T]) Update(f func(*T)) (err error) {
	switch {
	case v == nil || !v.m.made():
		return errNotMade("view", "CView", "CViewOf")
	case f == nil:
		return v.m.opErr("view", errors.New("Update with a nil function"))
	case v.direct != "":
		return v.m.opErr("view", fmt.Errorf("%w: Update hands out a *%v, but its Go layout is not its C layout: %s; use Load and Store, which go through the C layout", ipcchan.ErrNotSupported, reflect.TypeFor[T](), v.direct))
	}
	return v.access(func(mem []byte) { f((*T)(unsafe.Pointer(&mem[0]))) })
}

// access runs f on the view's C struct bytes in the mapping, while the
// mapping stays mapped, under the fault guard if the mapping needs it.
func (v *CView[T]) access(f func(mem []byte)) (err error) {
	if v == nil || !v.m.made() {
		return errNotMade("view", "CView", "CViewOf")
	}
	if !v.m.uses.enter() {
		return v.m.opErr("view", os.ErrClosed)
	}
	defer v.m.uses.leave()
	mem := v.m.data[v.off : v.off+v.layout.Size : v.off+v.layout.Size]
	if v.m.guard {
		if err := v.m.faultErr(); err != nil {
			return v.m.opErr("view", err)
		}
		defer func() {
			if p := recover(); p != nil {
				err = v.m.opErr("view", v.m.faulted(p))
			}
		}()
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	}
	f(mem)
	return nil
}

// cSteps lists the moves between T's Go layout and the C layout, one per
// leaf field of layout (merged where both sides are contiguous), and says
// why the two layouts differ, or "" if they are the same. The leaves are
// found in the order and with the names the codec gives them, which is
// checked.
func cSteps(t reflect.Type, layout codec.CLayout) ([]cStep, string, error) {
	var leaves []cLeaf
	walkCLeaves(t, 0, "", &leaves)
	if len(leaves) != len(layout.Fields) {
		return nil, "", fmt.Errorf("%v: %d fields in Go, %d in its C layout", t, len(leaves), len(layout.Fields))
	}
	var steps []cStep
	direct := ""
	for i, l := range leaves {
		f := layout.Fields[i]
		if f.Name != l.name || (l.kind != cString && uintptr(f.Size) != l.size) {
			return nil, "", fmt.Errorf("%v: field %d is %s (%d bytes) in Go, %s (%d bytes) in its C layout", t, i, l.name, l.size, f.Name, f.Size)
		}
		switch {
		case direct != "":
		case l.kind == cString:
			direct = fmt.Sprintf("%s is a string, which shared memory cannot hold (it is a char[%d] there)", l.name, f.Size)
		case l.mem != uintptr(f.Offset):
			direct = fmt.Sprintf("%s is at offset %d in Go, %d in C", l.name, l.mem, f.Offset)
		}
		s := cStep{kind: l.kind, mem: l.mem, off: f.Offset, n: f.Size}
		if k := len(steps) - 1; k >= 0 && s.kind == cCopy && steps[k].kind == cCopy &&
			steps[k].mem+uintptr(steps[k].n) == s.mem && steps[k].off+steps[k].n == s.off {
			steps[k].n += s.n
			continue
		}
		steps = append(steps, s)
	}
	if direct == "" && t.Size() != uintptr(layout.Size) {
		direct = fmt.Sprintf("Go's %v is %d bytes, C's %d", t, t.Size(), layout.Size)
	}
	return steps, direct, nil
}

// cLeaf is a leaf field of a Go type as the C-layout codec counts them.
type cLeaf struct {
	name string
	kind cStepKind
	mem  uintptr // offset in the Go value
	size uintptr // Go size (0 for a string)
}

// walkCLeaves appends t's leaf fields at mem, named from path, by the
// codec's rules (codec/cstruct.go addC): a bool, a number or an array of
// numbers is one leaf; arrays of other things and structs are walked into;
// blank fields and empty arrays are none; a string field is a char[N].
// t is a type the codec accepted.
func walkCLeaves(t reflect.Type, mem uintptr, path string, out *[]cLeaf) {
	name := strings.TrimPrefix(path, ".")
	switch k := t.Kind(); {
	case k == reflect.Bool:
		*out = append(*out, cLeaf{name, cBool, mem, 1})
	case k == reflect.Array && t.Len() == 0:
	case k == reflect.Array && numericKind(t.Elem().Kind()):
		*out = append(*out, cLeaf{name, cCopy, mem, t.Size()})
	case k == reflect.Array:
		for i := range t.Len() {
			walkCLeaves(t.Elem(), mem+uintptr(i)*t.Elem().Size(), fmt.Sprintf("%s[%d]", path, i), out)
		}
	case k == reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			switch {
			case f.Name == "_":
			case f.Type.Kind() == reflect.String:
				*out = append(*out, cLeaf{strings.TrimPrefix(path+"."+f.Name, "."), cString, mem + f.Offset, 0})
			default:
				walkCLeaves(f.Type, mem+f.Offset, path+"."+f.Name, out)
			}
		}
	default:
		*out = append(*out, cLeaf{name, cCopy, mem, t.Size()})
	}
}

// numericKind reports whether k is a sized number the codec copies whole.
func numericKind(k reflect.Kind) bool {
	switch k {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return true
	}
	return false
}
