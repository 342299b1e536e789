package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A Framing cuts a byte stream into messages, and writes messages onto
// one. The default is [Frames], the 8-byte header of the wire format; the
// others — [FixedRecords], [DelimitedRecords], [LengthPrefixed] — speak
// the framings existing programs use, so that a Go endpoint can replace one
// side of them unchanged. Only Frames carries a tag; the others carry the
// payload alone.
//
// Framings are values without state, safe for concurrent use.
type Framing interface {
	// Split looks for one whole record at the start of buf, whose payload
	// may be at most max bytes. It returns:
	//   - the record: its payload (a sub-slice of buf), its tag and n, the
	//     bytes it spans, with err nil;
	//   - n == 0 and err nil when buf holds only part of a record; need is
	//     then the length buf must reach before a record can be whole, or
	//     0 if unknown;
	//   - err, wrapping ErrFrameTooLarge or ErrMalformedFrame, for a record
	//     that cannot be delivered. n is then the bytes to drop so that
	//     the stream goes on with the next record (n may exceed len(buf):
	//     the rest is still to arrive), or 0 if the stream cannot be
	//     resynchronised.
	Split(buf []byte, max int) (payload []byte, tag uint32, n, need int, err error)

	// AppendRecord appends payload as one record carrying tag to dst. It
	// returns an error wrapping ErrUnframable, leaving dst as it was, for
	// a payload the framing cannot carry (too long, holding the
	// delimiter, a non-zero tag on an untagged framing).
	AppendRecord(dst []byte, tag uint32, payload []byte) ([]byte, error)

	// RecordLen returns the bytes a record of an n-byte payload spans, and
	// MaxPayload the longest payload a record can carry (math.MaxInt for
	// no limit of the framing's own).
	RecordLen(n int) int
	MaxPayload() int

	// Tagged reports whether records carry a tag.
	Tagged() bool

	// String names the framing in errors and handshakes.
	String() string
}

// ErrMalformedFrame is wrapped by errors for a record a Framing cannot
// parse (a length prefix smaller than itself, for example).
var ErrMalformedFrame = errors.New("codec: malformed frame")

// ErrUnframable is wrapped by errors for a payload a Framing cannot carry.
var ErrUnframable = errors.New("codec: payload cannot be framed")

// Frames is the default framing: the wire format's 8-byte header (payload
// length and tag, both uint32 big-endian) before each payload.
var Frames Framing = headerFraming{}

type headerFraming struct{}

func (headerFraming) Split(buf []byte, max int) ([]byte, uint32, int, int, error) {
	if len(buf) < HeaderSize {
		return nil, 0, 0, HeaderSize, nil
	}
	length, tag := ParseHeader(buf)
	if err := CheckLength(length, max); err != nil {
		return nil, tag, HeaderSize + int(length), 0, err
	}
	end := HeaderSize + int(length)
	if len(buf) < end {
		return nil, 0, 0, end, nil
	}
	return buf[HeaderSize:end], tag, end, 0, nil
}

func (headerFraming) AppendRecord(dst []byte, tag uint32, payload []byte) ([]byte, error) {
	if uint64(len(payload)) > MaxFrameSize {
		return dst, fmt.Errorf("%w: %d bytes, more than a header describes", ErrUnframable, len(payload))
	}
	return AppendFrame(dst, tag, payload), nil
}

func (headerFraming) RecordLen(n int) int { return HeaderSize + n }
func (headerFraming) MaxPayload() int     { return min(MaxFrameSize, math.MaxInt) }
func (headerFraming) Tagged() bool        { return true }
func (headerFraming) String() string      { return "frames" }

// FixedRecords returns the framing of records of exactly size bytes, as a
// program writing a whole struct or a fixed buffer each time produces. A
// shorter payload is padded with zero bytes to size; a longer one is
// refused. A record read in several pieces is reassembled before it is
// delivered, and a stream that ends inside a record ends with
// io.ErrUnexpectedEOF. It panics if size < 1.
func FixedRecords(size int) Framing {
	if size < 1 {
		panic(fmt.Sprintf("codec: FixedRecords(%d): a record needs at least one byte", size))
	}
	return &fixedFraming{size: size}
}

type fixedFraming struct{ size int }

func (f *fixedFraming) Split(buf []byte, max int) ([]byte, uint32, int, int, error) {
	if f.size > max {
		return nil, 0, 0, 0, fmt.Errorf("%w: %d-byte records, limit %d", ErrFrameTooLarge, f.size, max)
	}
	if len(buf) < f.size {
		return nil, 0, 0, f.size, nil
	}
	return buf[:f.size], 0, f.size, 0, nil
}

func (f *fixedFraming) AppendRecord(dst []byte, tag uint32, payload []byte) ([]byte, error) {
	if err := untagged(f, tag); err != nil {
		return dst, err
	}
	if len(payload) > f.size {
		return dst, fmt.Errorf("%w: %d bytes, records are %d", ErrUnframable, len(payload), f.size)
	}
	dst = append(dst, payload...)
	return append(dst, make([]byte, f.size-len(payload))...), nil
}

func (f *fixedFraming) RecordLen(int) int { return f.size }
func (f *fixedFraming) MaxPayload() int   { return f.size }
func (*fixedFraming) Tagged() bool        { return false }
func (f *fixedFraming) String() string    { return fmt.Sprintf("fixed-%d", f.size) }

// DelimitedRecords returns the framing of records each ended by delim, such
// as lines of text ended by '\n'. The payload excludes the delimiter; a
// payload holding delim is refused. A record longer than the receiver's
// maximum cannot be skipped safely (where it ends is unknown until it
// does), so it ends the stream with an error wrapping ErrFrameTooLarge, as
// bufio.Scanner does; a stream that ends after a record without its
// delimiter ends with io.ErrUnexpectedEOF.
func DelimitedRecords(delim byte) Framing { return &delimFraming{delim: delim} }

type delimFraming struct{ delim byte }

func (d *delimFraming) Split(buf []byte, max int) ([]byte, uint32, int, int, error) {
	look := buf
	if len(look)-1 > max { // not len(look) > max+1, which overflows for max = math.MaxInt
		look = look[:max+1]
	}
	if i := bytes.IndexByte(look, d.delim); i >= 0 {
		return buf[:i], 0, i + 1, 0, nil
	}
	if len(buf) > max {
		return nil, 0, 0, 0, fmt.Errorf("%w: no delimiter %q within %d bytes", ErrFrameTooLarge, d.delim, max)
	}
	return nil, 0, 0, 0, nil
}

func (d *delimFraming) AppendRecord(dst []byte, tag uint32, payload []byte) ([]byte, error) {
	if err := untagged(d, tag); err != nil {
		return dst, err
	}
	if i := bytes.IndexByte(payload, d.delim); i >= 0 {
		return dst, fmt.Errorf("%w: the payload holds the delimiter %q at byte %d", ErrUnframable, d.delim, i)
	}
	dst = append(dst, payload...)
	return append(dst, d.delim), nil
}

func (*delimFraming) RecordLen(n int) int { return n + 1 }
func (*delimFraming) MaxPayload() int     { return math.MaxInt }
func (*delimFraming) Tagged() bool        { return false }
func (d *delimFraming) String() string    { return fmt.Sprintf("delimited-%#02x", d.delim) }

// LengthPrefixed returns the framing of records that start with their
// length as an unsigned integer of size bytes (1, 2, 4 or 8) in order
// (binary.BigEndian, LittleEndian or NativeEndian). If inclusive is set the
// length counts the prefix itself, as some protocols do. A record whose
// length exceeds the receiver's maximum is skipped with an error wrapping
// ErrFrameTooLarge, and the next one is read. It returns an error wrapping
// ErrUnsupportedType for another size or order.
func LengthPrefixed(size int, order binary.ByteOrder, inclusive bool) (Framing, error) {
	switch size {
	case 1, 2, 4, 8:
	default:
		return nil, fmt.Errorf("%w: a %d-byte length prefix (want 1, 2, 4 or 8)", ErrUnsupportedType, size)
	}
	big, err := isBigEndian(order)
	if err != nil {
		return nil, err
	}
	return &prefixFraming{size: size, big: big, inclusive: inclusive}, nil
}

type prefixFraming struct {
	size      int
	big       bool
	inclusive bool
}

func (p *prefixFraming) Split(buf []byte, max int) ([]byte, uint32, int, int, error) {
	if len(buf) < p.size {
		return nil, 0, 0, p.size, nil
	}
	length := p.get(buf)
	if p.inclusive {
		if length < uint64(p.size) {
			return nil, 0, 0, 0, fmt.Errorf("%w: length %d is less than its own %d-byte prefix", ErrMalformedFrame, length, p.size)
		}
		length -= uint64(p.size)
	}
	if length > uint64(max) || length > uint64(math.MaxInt-p.size) { // the record's end must be an int
		if length > math.MaxInt32 {
			// Too far to skip: more likely a stream out of step.
			return nil, 0, 0, 0, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, length, max)
		}
		return nil, 0, p.size + int(length), 0, fmt.Errorf("%w: %d bytes announced, limit %d", ErrFrameTooLarge, length, max)
	}
	end := p.size + int(length)
	if len(buf) < end {
		return nil, 0, 0, end, nil
	}
	return buf[p.size:end], 0, end, 0, nil
}

func (p *prefixFraming) get(b []byte) uint64 {
	var full [8]byte
	if p.big {
		copy(full[8-p.size:], b[:p.size])
		return binary.BigEndian.Uint64(full[:])
	}
	copy(full[:], b[:p.size])
	return binary.LittleEndian.Uint64(full[:])
}

func (p *prefixFraming) AppendRecord(dst []byte, tag uint32, payload []byte) ([]byte, error) {
	if err := untagged(p, tag); err != nil {
		return dst, err
	}
	if len(payload) > p.MaxPayload() {
		return dst, fmt.Errorf("%w: %d bytes, a %s prefix carries at most %d", ErrUnframable, len(payload), p, p.MaxPayload())
	}
	length := uint64(len(payload))
	if p.inclusive {
		length += uint64(p.size)
	}
	var prefix [8]byte // filled whole in the order wanted, then cut to size
	if p.big {
		binary.BigEndian.PutUint64(prefix[:], length<<(64-8*p.size))
	} else {
		binary.LittleEndian.PutUint64(prefix[:], length)
	}
	dst = append(dst, prefix[:p.size]...)
	return append(dst, payload...), nil
}

func (p *prefixFraming) RecordLen(n int) int { return p.size + n }

func (p *prefixFraming) MaxPayload() int {
	if p.size == 8 {
		return math.MaxInt - 8
	}
	// In 64 bits: a 4-byte prefix's 2^32-1 is more than a 32-bit int holds.
	n := uint64(1)<<(8*p.size) - 1
	if p.inclusive {
		n -= uint64(p.size)
	}
	return int(min(n, math.MaxInt-8))
}

func (*prefixFraming) Tagged() bool { return false }

func (p *prefixFraming) String() string {
	s := fmt.Sprintf("u%d%s-prefix", 8*p.size, map[bool]string{true: "be", false: "le"}[p.big])
	if p.inclusive {
		s += "-inclusive"
	}
	return s
}

func untagged(f Framing, tag uint32) error {
	if tag != 0 {
		return fmt.Errorf("%w: %s records carry no tag (got %d)", ErrUnframable, f, tag)
	}
	return nil
}
