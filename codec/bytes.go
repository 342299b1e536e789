package codec

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

func (bytesCodec) Decode(data []byte, v *[]byte) error {
	*v = append((*v)[:0], data...)
	return nil
}

type stringCodec struct{}

func (stringCodec) Name() string { return "string" }

func (stringCodec) Append(dst []byte, v string) ([]byte, error) { return append(dst, v...), nil }

// EncodedSize returns len(v): see Sizer.
func (stringCodec) EncodedSize(v string) (int, bool) { return len(v), true }

func (stringCodec) Decode(data []byte, v *string) error {
	*v = string(data)
	return nil
}
