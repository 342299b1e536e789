package codec

import "unsafe"

// Bytes returns the codec for []byte: the payload is the bytes themselves.
// Decode copies into the capacity *v already has, so a receive loop that
// reuses one slice allocates nothing; an empty payload decodes to an empty
// slice (nil if *v had no capacity). Safe for concurrent use.
func Bytes() Codec[[]byte] { return bytesCodec{} }

// String returns the codec for string: the payload is the string's bytes,
// taken as they are (they need not be valid UTF-8). Encoding allocates
// nothing; decoding allocates the new string. Safe for concurrent use.
func String() Codec[string] { return stringCodec{} }

type bytesCodec struct{}

func (bytesCodec) Name() string { return "bytes" }

func (bytesCodec) Append(dst []byte, v []byte) ([]byte, error) { return append(dst, v...), nil }

// EncodedSize returns len(v): see Sizer.
func (bytesCodec) EncodedSize(v []byte) (int, bool) { return len(v), true }

// View returns v itself: see Viewer.
func (bytesCodec) View(v []byte) []byte { return v }

// Room returns (*v)[:cap(*v)]: see Viewer.
func (bytesCodec) Room(v *[]byte) []byte { return (*v)[:cap(*v)] }

func (bytesCodec) Decode(data []byte, v *[]byte) error {
	*v = decodeBytes(*v, data)
	return nil
}

// decodeBytes returns data copied into dst's memory (dst[:len(data)],
// reallocated if too small), without copying when data is already there:
// a payload read straight into the Room of dst.
func decodeBytes(dst, data []byte) []byte {
	if len(data) > 0 && len(data) <= cap(dst) && &dst[:1][0] == &data[0] {
		return dst[:len(data)]
	}
	return append(dst[:0], data...)
}

type stringCodec struct{}

func (stringCodec) Name() string { return "string" }

func (stringCodec) Append(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil }

// EncodedSize returns len(v): see Sizer.
func (stringCodec) EncodedSize(v string) (int, bool) { return len(v), true }

// View returns the string's bytes, which must not be modified: see Viewer.
func (stringCodec) View(v string) []byte { return unsafe.Slice(unsafe.StringData(v), len(v)) }

// Room returns nil: a string owns no memory to decode into (see Viewer).
func (stringCodec) Room(*string) []byte { return nil }

func (stringCodec) Decode(data []byte, v *string) error {
	*v = string(data)
	return nil
}
