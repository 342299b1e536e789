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

func (namedBytesCodec[T]) Decode(data []byte, v *T) error {
	b := (*[]byte)(unsafe.Pointer(v))
	*b = append((*b)[:0], data...)
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

func (namedStringCodec[T]) Decode(data []byte, v *T) error {
	*(*string)(unsafe.Pointer(v)) = string(data)
	return nil
}
