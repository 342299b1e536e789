package codec

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"unsafe"
)

// A plan is the list of steps that moves a fixed-size value between its
// memory layout and the packed encoding/binary layout.
type plan struct {
	size    int
	ops     []op
	big     bool // the encoding is big-endian
	strings bool // some op is opCString: encode can fail
}

type opKind uint8

const (
	opCopy    opKind = iota // n bytes as they are (already in the wanted order)
	opSwap                  // count fields of size bytes, byte-swapped
	opBool                  // one bool: 0 or 1 on the wire, any non-zero is true
	opPad                   // n bytes of a blank field: zeros out, skipped in
	opCString               // a Go string as a C char[n]: NUL-padded out, up to the first NUL in
)

type op struct {
	kind  opKind
	mem   uintptr // offset in the value
	wire  int     // offset in the encoding
	n     int     // bytes (copy, pad) or fields (swap)
	width int     // bytes per field (swap)
}

func typeOf(v any) reflect.Type { return reflect.TypeOf(v) }

// newPlan builds the plan for t, swapping multi-byte fields if the wanted
// order (big or little) is not the machine's.
func newPlan(t reflect.Type, big bool) (*plan, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: interface type has no fixed size", ErrUnsupportedType)
	}
	b := planBuilder{swap: big != nativeBig}
	if err := b.add(t, 0, t.String()); err != nil {
		return nil, err
	}
	return &plan{size: b.wire, ops: b.ops, big: big}, nil
}

type planBuilder struct {
	swap bool
	wire int
	ops  []op

	// C layout (cstruct.go): fields at their C ABI offsets, padding
	// included, and every leaf field recorded for CStructLayout.
	c      bool
	fields []CField
}

func (b *planBuilder) add(t reflect.Type, mem uintptr, path string) error {
	if b.c {
		return b.addC(t, mem, path)
	}
	switch t.Kind() {
	case reflect.Bool:
		b.push(op{kind: opBool, mem: mem, wire: b.wire, n: 1})
		b.wire++
	case reflect.Int8, reflect.Uint8:
		b.field(mem, 1, 1)
	case reflect.Int16, reflect.Uint16:
		b.field(mem, 2, 1)
	case reflect.Int32, reflect.Uint32, reflect.Float32:
		b.field(mem, 4, 1)
	case reflect.Int64, reflect.Uint64, reflect.Float64:
		b.field(mem, 8, 1)
	case reflect.Complex64:
		b.field(mem, 4, 2)
	case reflect.Complex128:
		b.field(mem, 8, 2)
	case reflect.Array:
		elem := t.Elem()
		if k := elem.Kind(); scalarWidth(k) > 0 {
			fields := t.Len()
			if k == reflect.Complex64 || k == reflect.Complex128 {
				fields *= 2
			}
			b.field(mem, scalarWidth(k), fields)
			return nil
		}
		for i := range t.Len() {
			if err := b.add(elem, mem+uintptr(i)*elem.Size(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Name == "_" {
				n := binary.Size(reflect.Zero(f.Type).Interface())
				if n < 0 {
					return fmt.Errorf("%w: %s.%s (%v) has no fixed size", ErrUnsupportedType, path, f.Name, f.Type)
				}
				b.push(op{kind: opPad, wire: b.wire, n: n})
				b.wire += n
				continue
			}
			if err := b.add(f.Type, mem+f.Offset, path+"."+f.Name); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: %s is %v, which has no fixed size", ErrUnsupportedType, path, t)
	}
	return nil
}

// scalarWidth is the encoded size of one field of a sized numeric kind.
func scalarWidth(k reflect.Kind) int {
	switch k {
	case reflect.Int8, reflect.Uint8:
		return 1
	case reflect.Int16, reflect.Uint16:
		return 2
	case reflect.Int32, reflect.Uint32, reflect.Float32, reflect.Complex64:
		return 4
	case reflect.Int64, reflect.Uint64, reflect.Float64, reflect.Complex128:
		return 8
	}
	return 0
}

// field adds count contiguous numeric fields of width bytes at mem.
func (b *planBuilder) field(mem uintptr, width, count int) {
	if width == 1 || !b.swap {
		b.push(op{kind: opCopy, mem: mem, wire: b.wire, n: width * count})
	} else {
		b.push(op{kind: opSwap, mem: mem, wire: b.wire, n: count, width: width})
	}
	b.wire += width * count
}

// push appends o, merging it into the previous step when both are
// contiguous in memory and on the wire.
func (b *planBuilder) push(o op) {
	if k := len(b.ops); k > 0 {
		last := &b.ops[k-1]
		switch {
		case o.kind == opCopy && last.kind == opCopy &&
			last.mem+uintptr(last.n) == o.mem && last.wire+last.n == o.wire:
			last.n += o.n
			return
		case o.kind == opSwap && last.kind == opSwap && last.width == o.width &&
			last.mem+uintptr(last.n*last.width) == o.mem && last.wire+last.n*last.width == o.wire:
			last.n += o.n
			return
		case o.kind == opPad && last.kind == opPad && last.wire+last.n == o.wire:
			last.n += o.n
			return
		}
	}
	b.ops = append(b.ops, o)
}

// encode writes the value at p into dst, which is exactly size bytes long.
// Only a plan with strings can fail (a string too long for its field).
func (pl *plan) encode(dst []byte, p unsafe.Pointer) error {
	for i := range pl.ops {
		o := &pl.ops[i]
		src := unsafe.Add(p, o.mem)
		switch o.kind {
		case opCopy:
			copy(dst[o.wire:o.wire+o.n], unsafe.Slice((*byte)(src), o.n))
		case opSwap:
			swapOut(dst[o.wire:o.wire+o.n*o.width], src, o.width, o.n, pl.big)
		case opBool:
			dst[o.wire] = 0
			if *(*bool)(src) {
				dst[o.wire] = 1
			}
		case opPad:
			clear(dst[o.wire : o.wire+o.n])
		case opCString:
			if err := putCString(dst[o.wire:o.wire+o.n], *(*string)(src)); err != nil {
				return err
			}
		}
	}
	return nil
}

// decode reads the value at p from src, which is exactly size bytes long.
func (pl *plan) decode(src []byte, p unsafe.Pointer) {
	for i := range pl.ops {
		o := &pl.ops[i]
		dst := unsafe.Add(p, o.mem)
		switch o.kind {
		case opCopy:
			copy(unsafe.Slice((*byte)(dst), o.n), src[o.wire:o.wire+o.n])
		case opSwap:
			swapIn(dst, src[o.wire:o.wire+o.n*o.width], o.width, o.n, pl.big)
		case opBool:
			*(*bool)(dst) = src[o.wire] != 0
		case opCString:
			*(*string)(dst) = cString(src[o.wire : o.wire+o.n])
		}
	}
}

// swapOut writes count fields of width bytes from memory at src into dst in
// the foreign byte order (big-endian if big). Memory fields are aligned; dst
// need not be.
func swapOut(dst []byte, src unsafe.Pointer, width, count int, big bool) {
	order := byteOrder(big)
	for i := range count {
		at := unsafe.Add(src, i*width)
		switch width {
		case 2:
			order.PutUint16(dst[i*2:], *(*uint16)(at))
		case 4:
			order.PutUint32(dst[i*4:], *(*uint32)(at))
		case 8:
			order.PutUint64(dst[i*8:], *(*uint64)(at))
		}
	}
}

// swapIn is swapOut's inverse.
func swapIn(dst unsafe.Pointer, src []byte, width, count int, big bool) {
	order := byteOrder(big)
	for i := range count {
		at := unsafe.Add(dst, i*width)
		switch width {
		case 2:
			*(*uint16)(at) = order.Uint16(src[i*2:])
		case 4:
			*(*uint32)(at) = order.Uint32(src[i*4:])
		case 8:
			*(*uint64)(at) = order.Uint64(src[i*8:])
		}
	}
}

func byteOrder(big bool) binary.ByteOrder {
	if big {
		return binary.BigEndian
	}
	return binary.LittleEndian
}
