package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// HeaderSize is the size in bytes of a frame header on a byte stream.
const HeaderSize = 8

// DefaultMaxFrameSize is the largest payload a receiver accepts unless it is
// configured otherwise: 16 MiB.
const DefaultMaxFrameSize = 16 << 20

// MaxFrameSize is the largest payload the header can describe.
const MaxFrameSize = math.MaxUint32

// PutHeader writes the header of a frame carrying length payload bytes and
// tag into b[:HeaderSize]. It panics if b is shorter than HeaderSize or if
// length does not fit in a uint32.
func PutHeader(b []byte, length int, tag uint32) {
	if length < 0 || uint64(length) > MaxFrameSize {
		panic(fmt.Sprintf("codec: frame length %d out of range", length))
	}
	binary.BigEndian.PutUint32(b[0:4], uint32(length))
	binary.BigEndian.PutUint32(b[4:8], tag)
}

// AppendHeader appends the header of a frame carrying length payload bytes
// and tag to dst.
func AppendHeader(dst []byte, length int, tag uint32) []byte {
	var h [HeaderSize]byte
	PutHeader(h[:], length, tag)
	return append(dst, h[:]...)
}

// ParseHeader returns the payload length and tag of the header in
// b[:HeaderSize]. It panics if b is shorter than HeaderSize.
func ParseHeader(b []byte) (length uint32, tag uint32) {
	_ = b[HeaderSize-1]
	return binary.BigEndian.Uint32(b[0:4]), binary.BigEndian.Uint32(b[4:8])
}

// CheckLength returns an error wrapping [ErrFrameTooLarge] if a frame of
// length payload bytes exceeds max. A max of zero or less means
// [DefaultMaxFrameSize].
func CheckLength(length uint32, max int) error {
	if max <= 0 {
		max = DefaultMaxFrameSize
	}
	if uint64(length) > uint64(max) {
		return fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, length, max)
	}
	return nil
}

// AppendFrame appends a whole frame (header and payload) to dst.
func AppendFrame(dst []byte, tag uint32, payload []byte) []byte {
	dst = AppendHeader(dst, len(payload), tag)
	return append(dst, payload...)
}
