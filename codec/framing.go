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
// others — [FixedRecords], [DelimitedRecords], [LengthPrefixed],
// [ReadRecords] and [PaddedRecords] — speak
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
// io.ErrUnexpectedEOF, its bytes dropped: for writers that write fewer
// than size bytes (strlen(msg), a struct without its tail), see
// PaddedRecords and ReadRecords. It panics if size < 1.
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

// A ReadFraming is a Framing whose records are not marked in the stream's
// bytes at all: each read() of the stream is one record, as for the
// classic C reader that does read(fd, buf, size) and takes what it gets as
// one message. [ReadRecords] and [PaddedRecords] return one.
//
// A byte-stream receiver given a ReadFraming reads only when it holds
// nothing unread, at most ReadSize bytes at a time, and hands the bytes of
// that one read to Split, padded first with zero bytes to ReadSize if the
// framing pads. Split on its own, without those reads, can only take the
// bytes it is given (at most ReadSize of them) as one record.
type ReadFraming interface {
	Framing
	// ReadSize returns the most bytes one record, and so one read, may
	// hold, and whether a shorter record is delivered padded with zero
	// bytes to that size.
	ReadSize() (size int, padded bool)
}

// ReadRecords returns the framing of classic peers that write each message
// in one write() of however many bytes it has — strlen(msg), a struct
// whose tail they leave out — for a reader that takes each read() of up to
// size bytes as one message. A receiver delivers each read's bytes as they
// are (1 to size bytes); a sender writes each payload, 1 to size bytes, in
// one write() of its own (never joined to another in user space, so
// WithSendBuffer queues nothing with it). It panics if size < 1.
//
// What this can promise is what the kernel promises, no more:
//
//   - On a pipe or FIFO a write of at most PIPE_BUF (4096) bytes is atomic:
//     its bytes lie together in the stream, never interleaved with another
//     writer's. But a read takes whatever is in the pipe, up to size
//     bytes: if several writes are waiting when the reader reads, they
//     come as ONE record, and if more than size bytes are waiting, the
//     read ends inside a write, which is then cut across two records (the
//     classic C reader has the same flaw). "One read, one message" holds
//     only while nothing else is waiting when a write lands: each writer
//     waits for the reader between its writes (it writes one record per
//     open and writers do not overlap, or it waits for a reply).
//   - A write longer than size cannot be told apart from several writes:
//     it arrives as several records of at most size bytes, split where the
//     reads fall, exactly as read(fd, buf, size) sees it. A sender refuses
//     a payload longer than size (ipcchan.ErrMessageTooLarge; AppendRecord
//     returns ErrUnframable).
//   - A write of 0 bytes puts nothing in a pipe or socket and a read of 0
//     bytes is the end of the stream, so there is no empty record: a
//     receiver never delivers one, and a sender refuses an empty payload
//     with ErrUnframable (use PaddedRecords to send size zero bytes).
//   - On a stream socket none of this holds: TCP and Unix stream sockets
//     keep no write boundaries at all, and any write may arrive in
//     several reads. Use a framing that marks records in the bytes there.
//
// Use it only to speak to programs written this way; a stream whose both
// ends are yours wants a framing that marks its records.
func ReadRecords(size int) ReadFraming {
	if size < 1 {
		panic(fmt.Sprintf("codec: ReadRecords(%d): a record needs at least one byte", size))
	}
	return &readFraming{size: size}
}

// PaddedRecords is FixedRecords(size) for writers that do not always write
// size bytes: a receiver takes each read() of up to size bytes as one
// record, as ReadRecords does, and delivers it padded with zero bytes to
// size — what a C reader sees in its zeroed buffer, and what a decoder of
// a size-byte C struct (codec.CStruct, codec.CText) wants. A sender writes
// every record padded to size, exactly as FixedRecords does, so a reader
// reading size bytes at a time never joins two of them. The caveats of
// ReadRecords apply to what is received: two short writes waiting in a
// pipe together arrive as one record, a write longer than size as several,
// and an empty write as nothing. It panics if size < 1.
func PaddedRecords(size int) ReadFraming {
	if size < 1 {
		panic(fmt.Sprintf("codec: PaddedRecords(%d): a record needs at least one byte", size))
	}
	return &readFraming{size: size, pad: true}
}

type readFraming struct {
	size int
	pad  bool
}

func (r *readFraming) ReadSize() (int, bool) { return r.size, r.pad }

// Split takes the first size bytes of buf, or all of it, as one record.
// A padded framing given fewer than size bytes returns them padded in a
// new slice (a byte-stream receiver pads in its own buffer first, so that
// this does not allocate).
func (r *readFraming) Split(buf []byte, max int) ([]byte, uint32, int, int, error) {
	if r.size > max {
		return nil, 0, 0, 0, fmt.Errorf("%w: records of up to %d bytes, limit %d", ErrFrameTooLarge, r.size, max)
	}
	if len(buf) == 0 {
		return nil, 0, 0, 0, nil
	}
	n := min(len(buf), r.size)
	if r.pad && n < r.size {
		p := make([]byte, r.size)
		copy(p, buf[:n])
		return p, 0, n, 0, nil
	}
	return buf[:n], 0, n, 0, nil
}

func (r *readFraming) AppendRecord(dst []byte, tag uint32, payload []byte) ([]byte, error) {
	if err := untagged(r, tag); err != nil {
		return dst, err
	}
	switch {
	case len(payload) > r.size:
		return dst, fmt.Errorf("%w: %d bytes, records are at most %d (the reader would get them in several reads)", ErrUnframable, len(payload), r.size)
	case len(payload) == 0 && !r.pad:
		return dst, fmt.Errorf("%w: an empty record: a write of 0 bytes reaches no reader (send at least one byte, or use PaddedRecords)", ErrUnframable)
	}
	dst = append(dst, payload...)
	if r.pad {
		dst = append(dst, make([]byte, r.size-len(payload))...)
	}
	return dst, nil
}

func (r *readFraming) RecordLen(n int) int {
	if r.pad {
		return r.size
	}
	return n
}

func (r *readFraming) MaxPayload() int { return r.size }
func (*readFraming) Tagged() bool      { return false }

func (r *readFraming) String() string {
	if r.pad {
		return fmt.Sprintf("padded-%d", r.size)
	}
	return fmt.Sprintf("read-%d", r.size)
}

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
