// Package codec turns Go values into bytes and back, and frames messages on
// byte streams with the ipcchan wire format.
//
// A [Codec] appends the encoding of a value to a caller's buffer and decodes a
// value from bytes. The built-in codecs are [Bytes], [String], [Binary]
// (fixed-size values through the encoding/binary layout, without allocating),
// [Appender] (types implementing encoding.BinaryAppender or
// encoding.BinaryMarshaler), [JSON] (for C and Python peers) and [Gob] (any Go
// type). [Default] picks the cheapest one that fits a type.
//
// Framing (see frame.go) is the 8-byte header described in the README: a
// big-endian uint32 payload length, then a big-endian uint32 tag.
package codec

import "errors"

// A Codec encodes values of type T to bytes and decodes them back.
//
// Implementations must be safe for concurrent use: ipcchan shares one Codec
// between all the goroutines that send or receive on a channel.
type Codec[T any] interface {
	// Name identifies the encoding (for example "bytes", "json" or
	// "binary-le"). Two peers must use codecs of the same name.
	Name() string

	// Append appends the encoding of v to dst and returns the extended
	// slice. On error the returned slice is undefined and must not be used.
	Append(dst []byte, v T) ([]byte, error)

	// Decode replaces *v with the value encoded in data. It must not keep a
	// reference to data after it returns, and it reports bytes that are not
	// a valid encoding as an error wrapping [ErrDecode], never by panicking.
	Decode(data []byte, v *T) error
}

var (
	// ErrDecode is wrapped by every error a built-in codec returns for bytes
	// that are not a valid encoding of the value's type.
	ErrDecode = errors.New("codec: malformed message")

	// ErrUnsupportedType is wrapped by the errors of codec constructors that
	// are asked for a type they cannot encode.
	ErrUnsupportedType = errors.New("codec: unsupported type")

	// ErrFrameTooLarge is returned when a frame header announces a payload
	// longer than the receiver's limit. The check happens before anything
	// is allocated for the payload.
	ErrFrameTooLarge = errors.New("codec: frame too large")
)

// Sizer is implemented by codecs that know the exact length of a value's
// encoding without encoding it, at the cost of a length lookup: [Bytes],
// [String] and the default codec of types whose underlying type is []byte
// or string (the value's length), and the fixed-size codecs [Binary],
// [CStruct] and [CText] (see [SizedCodec]).
//
// ipcchan uses it to encode a value straight into the room a transport
// reserves for it (a shared-memory ring), with no intermediate buffer.
// Codecs without it are encoded into a buffer and copied.
type Sizer[T any] interface {
	// EncodedSize returns the number of bytes Append appends for v when it
	// succeeds, and true; or false when the length is not known without
	// encoding. It does not check that v can be encoded: Append may still
	// fail, and then appends nothing that counts.
	EncodedSize(v T) (int, bool)
}

// Viewer is implemented by codecs whose encoding of a value is the value's
// own bytes, unchanged: [Bytes], [String] and the default codec of types
// whose underlying type is []byte or string.
//
// ipcchan uses it to move those bytes without an intermediate copy: a
// Sender hands View(v) to a transport that copies it into the kernel (a
// byte stream's writev) instead of appending v to a buffer first, and
// Receiver.RecvInto offers Room(dst) to a transport that can read a large
// payload straight into it (a byte stream), which Decode then takes as it
// is.
type Viewer[T any] interface {
	// View returns the encoding of v, sharing v's memory rather than
	// copying it. The caller must not modify the slice (for a string it
	// is the string's own, read-only memory) and must not keep it beyond
	// its use of v.
	View(v T) []byte

	// Room returns the memory that *v owns and can hold a decoded value
	// in: the whole capacity of a []byte. A payload placed at the start
	// of Room(v) decodes into *v without being copied: Decode(room[:n], v)
	// just sets *v's length. Room returns nil for a type whose values own
	// no such memory (a string, which is immutable).
	Room(v *T) []byte
}
