package codec

import (
	"unsafe"
)

// namedBytes returns the bytes codec for a T whose underlying type is
// []byte. T and []byte share their memory layout, so the codec converts
// pointers rather than copying.
func namedBytes[T any]() Codec[T] { return namedBytesCodec[T]{} }

type namedBytesCodec[T any] struct{}

func (namedBytesCodec[T]) Name() string { return "bytes" }

func (namedBytesCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	return append(dst, *(*[]byte)(unsafe.Pointer(&v))...), nil
}

// EncodedSize returns the length of v: see Sizer.
func (namedBytesCodec[T]) EncodedSize(v T) (int, bool) {
	return len(*(*[]byte)(unsafe.Pointer(&v))), true
}

// View returns v's bytes, shared: see Viewer.
func (namedBytesCodec[T]) View(v T) []byte { return *(*[]byte)(unsafe.Pointer(&v)) }

// Room returns the capacity of *v: see Viewer.
func (namedBytesCodec[T]) Room(v *T) []byte {
	b := *(*[]byte)(unsafe.Pointer(v))
	return b[:cap(b)]
}

func (namedBytesCodec[T]) Decode(data []byte, v *T) error {
	b := (*[]byte)(unsafe.Pointer(v))
	*b = decodeBytes(*b, data)
	return nil
}

// namedString returns the string codec for a T whose underlying type is
// string.
func namedString[T any]() Codec[T] { return namedStringCodec[T]{} }

type namedStringCodec[T any] struct{}

func (namedStringCodec[T]) Name() string { return "string" }

func (namedStringCodec[T]) Append(dst []byte, v T) ([]byte, error) {
	return append(dst, *(*string)(unsafe.Pointer(&v))...), nil
}

// EncodedSize returns the length of v: see Sizer.
func (namedStringCodec[T]) EncodedSize(v T) (int, bool) {
	return len(*(*string)(unsafe.Pointer(&v))), true
}

// View returns v's bytes, which must not be modified: see Viewer.
func (namedStringCodec[T]) View(v T) []byte {
	s := *(*string)(unsafe.Pointer(&v))
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Room returns nil: a string owns no memory to decode into (see Viewer).
func (namedStringCodec[T]) Room(*T) []byte { return nil }

func (namedStringCodec[T]) Decode(data []byte, v *T) error {
	*(*string)(unsafe.Pointer(v)) = string(data)
	return nil
}
