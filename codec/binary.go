package codec

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unsafe"
)

// Binary returns a codec for fixed-size values in the layout of
// encoding/binary: booleans, sized integers and floats, complex numbers,
// and arrays and structs of them, fields in order without padding, blank
// (_) fields written as zeros and skipped when decoding. order is
// binary.LittleEndian, binary.BigEndian or binary.NativeEndian.
//
// The bytes are those binary.Append writes (except that float bits are kept
// exactly, where encoding/binary quiets a signalling NaN), but the codec works from
// a plan of the type's memory layout made once, so encoding and decoding
// take no reflection and no allocation per value. Decode requires exactly
// Size bytes. Binary returns an error wrapping ErrUnsupportedType, naming
// the field, for a type without a fixed size (int, string, slices, maps,
// pointers, ...). Safe for concurrent use.
func Binary[T any](order binary.ByteOrder) (Codec[T], error) {
	big, err := isBigEndian(order)
	if err != nil {
		return nil, err
	}
	var zero T
	p, err := newPlan(typeOf(zero), big)
	if err != nil {
		return nil, err
	}
	name := "binary-le"
	if big {
		name = "binary-be"
	}
	return &binaryCodec[T]{plan: p, name: name}, nil
}

func isBigEndian(order binary.ByteOrder) (bool, error) {
	switch order {
	case binary.LittleEndian:
		return false, nil
	case binary.BigEndian:
		return true, nil
	case binary.NativeEndian:
		return nativeBig, nil
	}
	return false, fmt.Errorf("%w: byte order %v (want binary.LittleEndian, BigEndian or NativeEndian)", ErrUnsupportedType, order)
}

// nativeBig reports whether this machine is big-endian.
var nativeBig = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 0
}()

// SizedCodec is implemented by codecs whose encodings all have one size.
// ipcchan encodes the values of such a codec straight into the room a
// shared-memory ring reserves for them (see Sizer).
type SizedCodec interface {
	// Size returns the size in bytes of every encoding.
	Size() int
}

type binaryCodec[T any] struct {
	plan *plan
	name string
}

func (c *binaryCodec[T]) Name() string { return c.name }

// Size returns the size of every encoding, as binary.Size would.
func (c *binaryCodec[T]) Size() int { return c.plan.size }

// EncodedSize returns Size: see Sizer.
func (c *binaryCodec[T]) EncodedSize(T) (int, bool) { return c.plan.size, true }

func (c *binaryCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	n := len(dst)
	dst = slices.Grow(dst, c.plan.size)[:n+c.plan.size]
	c.plan.encode(dst[n:], unsafe.Pointer(&v)) // no strings: cannot fail
	return dst, nil
}

func (c *binaryCodec[T]) Decode(data []byte, v *T) error {
	if len(data) != c.plan.size {
		return fmt.Errorf("%w: %s value of %d bytes, got %d", ErrDecode, c.name, c.plan.size, len(data))
	}
	c.plan.decode(data, unsafe.Pointer(v))
	return nil
}
