package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/ipcchan/go/codec"
)

func mustPrefix(t testing.TB, size int, order binary.ByteOrder, inclusive bool) codec.Framing {
	t.Helper()
	f, err := codec.LengthPrefixed(size, order, inclusive)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func allFramings(t testing.TB) []codec.Framing {
	return []codec.Framing{
		codec.Frames,
		codec.FixedRecords(16),
		codec.DelimitedRecords('\n'),
		codec.DelimitedRecords(0),
		mustPrefix(t, 1, binary.BigEndian, false),
		mustPrefix(t, 2, binary.LittleEndian, true),
		mustPrefix(t, 4, binary.BigEndian, false),
		mustPrefix(t, 4, binary.NativeEndian, true),
		mustPrefix(t, 8, binary.LittleEndian, false),
	}
}

// Records written one after another come back whole and in order, however
// the stream is cut into reads.
func TestFramingRoundTrip(t *testing.T) {
	payloads := [][]byte{[]byte("hello"), {}, []byte("a longer payload"), {1, 2, 3}}
	for _, f := range allFramings(t) {
		t.Run(f.String(), func(t *testing.T) {
			var stream []byte
			var want [][]byte
			for _, p := range payloads {
				rec, err := f.AppendRecord(stream, 0, p)
				if err != nil {
					t.Fatalf("AppendRecord(%q): %v", p, err)
				}
				if got := len(rec) - len(stream); got != f.RecordLen(len(p)) {
					t.Fatalf("record of %d bytes spans %d, RecordLen says %d", len(p), got, f.RecordLen(len(p)))
				}
				stream = rec
				if f.String() == "fixed-16" {
					p = append(bytes.Clone(p), make([]byte, 16-len(p))...) // zero padded
				}
				want = append(want, p)
			}
			for step := 1; step <= len(stream); step++ {
				var got [][]byte
				var buf []byte
				for off := 0; off < len(stream); {
					end := min(off+step, len(stream))
					buf = append(buf, stream[off:end]...)
					off = end
					for {
						payload, _, n, need, err := f.Split(buf, 1<<10)
						if err != nil {
							t.Fatalf("step %d: Split: %v", step, err)
						}
						if n == 0 {
							if need != 0 && need <= len(buf) {
								t.Fatalf("step %d: incomplete record needs %d bytes, buffer has %d", step, need, len(buf))
							}
							break
						}
						got = append(got, bytes.Clone(payload))
						buf = buf[n:]
					}
				}
				if len(buf) != 0 || len(got) != len(want) {
					t.Fatalf("step %d: got %d records and %d bytes left, want %d records", step, len(got), len(buf), len(want))
				}
				for i := range want {
					if !bytes.Equal(got[i], want[i]) {
						t.Fatalf("step %d: record %d = %q, want %q", step, i, got[i], want[i])
					}
				}
			}
		})
	}
}

func TestFramingRefuses(t *testing.T) {
	cases := []struct {
		name    string
		f       codec.Framing
		tag     uint32
		payload []byte
	}{
		{"fixed too long", codec.FixedRecords(4), 0, []byte("12345")},
		{"delimiter inside", codec.DelimitedRecords('\n'), 0, []byte("two\nlines")},
		{"tag on untagged", codec.FixedRecords(4), 7, []byte("1")},
		{"u8 prefix too long", mustPrefix(t, 1, binary.BigEndian, false), 0, make([]byte, 256)},
		{"u8 inclusive too long", mustPrefix(t, 1, binary.BigEndian, true), 0, make([]byte, 255)},
	}
	for _, c := range cases {
		dst := []byte("kept")
		got, err := c.f.AppendRecord(dst, c.tag, c.payload)
		if !errors.Is(err, codec.ErrUnframable) {
			t.Errorf("%s: err = %v, want ErrUnframable", c.name, err)
		}
		if string(got) != "kept" {
			t.Errorf("%s: dst changed to %q", c.name, got)
		}
	}
	if _, err := codec.LengthPrefixed(3, binary.BigEndian, false); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Errorf("3-byte prefix: %v", err)
	}
}

func TestFramingBadInput(t *testing.T) {
	be4 := mustPrefix(t, 4, binary.BigEndian, false)
	incl := mustPrefix(t, 2, binary.BigEndian, true)
	cases := []struct {
		name    string
		f       codec.Framing
		in      []byte
		wantErr error
		wantN   int // bytes to drop; 0: the stream ends
	}{
		{"oversized prefix is skipped", be4, []byte{0, 0, 1, 0, 'x'}, codec.ErrFrameTooLarge, 4 + 256},
		{"absurd prefix ends the stream", be4, []byte{0xff, 0xff, 0xff, 0xff}, codec.ErrFrameTooLarge, 0},
		{"inclusive prefix below its own size", incl, []byte{0, 1}, codec.ErrMalformedFrame, 0},
		{"line over the limit", codec.DelimitedRecords('\n'), bytes.Repeat([]byte("x"), 101), codec.ErrFrameTooLarge, 0},
		{"record larger than the limit", codec.FixedRecords(200), make([]byte, 200), codec.ErrFrameTooLarge, 0},
		{"oversized frame is skipped", codec.Frames, []byte{0, 0, 0, 200, 0, 0, 0, 0}, codec.ErrFrameTooLarge, 208},
	}
	for _, c := range cases {
		_, _, n, _, err := c.f.Split(c.in, 100)
		if !errors.Is(err, c.wantErr) || n != c.wantN {
			t.Errorf("%s: n=%d err=%v, want n=%d and %v", c.name, n, err, c.wantN, c.wantErr)
		}
	}
	// A line of exactly the limit is fine.
	line := append(bytes.Repeat([]byte("x"), 100), '\n')
	if p, _, n, _, err := codec.DelimitedRecords('\n').Split(line, 100); err != nil || n != 101 || len(p) != 100 {
		t.Errorf("100-byte line: n=%d len=%d err=%v", n, len(p), err)
	}
}

// A limit of math.MaxInt — no limit, as a careless caller writes it —
// overflowed: a delimited record's look-ahead (max+1) and an 8-byte
// prefix's record end (8 + length) wrapped around, and Split panicked
// with a slice out of range. Every framing reads its records with it, and
// a prefix announcing more than an int can reach is refused.
func TestFramingSplitNoLimit(t *testing.T) {
	for _, f := range allFramings(t) {
		rec, err := f.AppendRecord(nil, 0, []byte("0123456789abcdef"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p, _, n, _, err := f.Split(append(rec, rec...), math.MaxInt)
		if err != nil || n != len(rec) || string(p) != "0123456789abcdef" {
			t.Errorf("%s: Split with no limit = %q, n=%d, %v", f, p, n, err)
		}
	}
	for _, f := range []codec.Framing{mustPrefix(t, 8, binary.BigEndian, false), mustPrefix(t, 8, binary.BigEndian, true)} {
		for _, length := range []uint64{math.MaxInt64, math.MaxInt64 - 7, math.MaxInt64 - 8, math.MaxUint64} {
			in := binary.BigEndian.AppendUint64(nil, length)
			_, _, n, need, err := f.Split(append(in, 'x'), math.MaxInt)
			if n < 0 || need < 0 || (err == nil && need == 0) {
				t.Errorf("%s: a %#x-byte prefix: n=%d need=%d err=%v", f, length, n, need, err)
			}
		}
	}
}

// FuzzFramingSplit feeds arbitrary bytes to every framing: Split never
// panics, returns payloads inside the buffer and no larger than the limit,
// and what AppendRecord writes, Split reads back.
func FuzzFramingSplit(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), uint8(0), 64)
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0, 0, 'a', 'b', 'c'}, uint8(0), 8)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, uint8(8), 1<<20)
	f.Add([]byte{0, 1, 2}, uint8(5), 1)
	framings := append(allFramings(f), codec.ReadRecords(16), codec.PaddedRecords(16), codec.ReadRecords(1))
	f.Fuzz(func(t *testing.T, data []byte, which uint8, max int) {
		fr := framings[int(which)%len(framings)]
		max = 1 + int(uint(max)%(1<<24))
		payload, _, n, need, err := fr.Split(data, max)
		switch {
		case err != nil:
			if n < 0 {
				t.Fatalf("negative drop %d", n)
			}
		case n > 0:
			if rf, ok := fr.(codec.ReadFraming); ok && len(payload) > n {
				// A padded record: the bytes read, then zeros to the size.
				size, padded := rf.ReadSize()
				if !padded || len(payload) != size || !bytes.Equal(payload[:n], data[:n]) || bytes.ContainsFunc(payload[n:], func(r rune) bool { return r != 0 }) {
					t.Fatalf("n=%d: payload %q is not %q padded to %d", n, payload, data[:n], size)
				}
				payload = payload[:n]
			}
			if n > len(data) || len(payload) > n || len(payload) > max {
				t.Fatalf("n=%d payload=%d for %d bytes, max %d", n, len(payload), len(data), max)
			}
		default:
			if need < 0 || (need != 0 && need <= len(data)) {
				t.Fatalf("incomplete with need=%d, have %d", need, len(data))
			}
		}
		rec, err := fr.AppendRecord(nil, 0, data)
		if err != nil {
			return
		}
		lim := len(rec)
		if rf, ok := fr.(codec.ReadFraming); ok {
			size, _ := rf.ReadSize()
			if size > lim { // its records fit a read of size bytes
				lim = size
			}
		}
		got, _, n, _, err := fr.Split(rec, lim)
		if err != nil || n != len(rec) || !bytes.HasPrefix(got, data) {
			t.Fatalf("round trip: n=%d/%d err=%v", n, len(rec), err)
		}
	})
}

// ReadRecords and PaddedRecords: each read is one record, delivered as it
// is or padded; a read of more than the size is cut; records that cannot
// be written as one read (empty, too long, tagged) are refused.
func TestReadRecords(t *testing.T) {
	rr, pr := codec.ReadRecords(8), codec.PaddedRecords(8)
	cases := []struct {
		f       codec.Framing
		read    string
		want    string
		wantN   int
		wantErr error
	}{
		{rr, "abc", "abc", 3, nil},
		{rr, "exactly8", "exactly8", 8, nil},
		{rr, "nine byte", "nine byt", 8, nil}, // the rest is the next record
		{rr, "", "", 0, nil},                  // nothing read: no record
		{pr, "abc", "abc\x00\x00\x00\x00\x00", 3, nil},
		{pr, "exactly8", "exactly8", 8, nil},
		{pr, "nine byte", "nine byt", 8, nil},
		{pr, "", "", 0, nil},
	}
	for _, c := range cases {
		p, tag, n, need, err := c.f.Split([]byte(c.read), 100)
		if string(p) != c.want || tag != 0 || n != c.wantN || need != 0 || err != nil {
			t.Errorf("%s.Split(%q) = %q, %d, n=%d, need=%d, %v; want %q, n=%d", c.f, c.read, p, tag, n, need, err, c.want, c.wantN)
		}
	}
	if _, _, n, _, err := rr.Split([]byte("x"), 7); !errors.Is(err, codec.ErrFrameTooLarge) || n != 0 {
		t.Errorf("size above the limit: n=%d err=%v, want ErrFrameTooLarge", n, err)
	}

	for _, c := range []struct {
		f       codec.Framing
		payload string
		want    string
		ok      bool
	}{
		{rr, "abc", "abc", true},
		{rr, "exactly8", "exactly8", true},
		{rr, "", "", false},
		{rr, "nine byte", "", false},
		{pr, "abc", "abc\x00\x00\x00\x00\x00", true},
		{pr, "", "\x00\x00\x00\x00\x00\x00\x00\x00", true},
		{pr, "nine byte", "", false},
	} {
		got, err := c.f.AppendRecord([]byte("k"), 0, []byte(c.payload))
		switch {
		case c.ok && (err != nil || string(got) != "k"+c.want):
			t.Errorf("%s.AppendRecord(%q) = %q, %v; want %q", c.f, c.payload, got, err, "k"+c.want)
		case !c.ok && (!errors.Is(err, codec.ErrUnframable) || string(got) != "k"):
			t.Errorf("%s.AppendRecord(%q) = %q, %v; want ErrUnframable, dst kept", c.f, c.payload, got, err)
		}
		if c.ok && c.f.RecordLen(len(c.payload)) != len(got)-1 {
			t.Errorf("%s.RecordLen(%d) = %d, record is %d", c.f, len(c.payload), c.f.RecordLen(len(c.payload)), len(got)-1)
		}
	}
	if _, err := rr.AppendRecord(nil, 3, []byte("x")); !errors.Is(err, codec.ErrUnframable) {
		t.Errorf("tag on read records: %v", err)
	}
	if rr.Tagged() || rr.MaxPayload() != 8 || rr.String() != "read-8" || pr.String() != "padded-8" {
		t.Errorf("Tagged %v MaxPayload %d String %q %q", rr.Tagged(), rr.MaxPayload(), rr, pr)
	}
	for _, mk := range []func(int) codec.ReadFraming{codec.ReadRecords, codec.PaddedRecords} {
		func() {
			defer func() {
				if recover() == nil {
					t.Error("size 0 did not panic")
				}
			}()
			mk(0)
		}()
	}
}
