package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// dribble writes b to w a few bytes at a time, so that a receiver sees
// records in pieces, then closes w.
func dribble(t *testing.T, w *os.File, b []byte, step int) {
	t.Helper()
	go func() {
		defer w.Close()
		for len(b) > 0 {
			n := min(step, len(b))
			if _, err := w.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
			time.Sleep(50 * time.Microsecond)
		}
	}()
}

// recvAll receives until the end of the stream and returns the values and
// the error that ended it (nil for io.EOF).
func recvAll[T any](t *testing.T, rx *ipcchan.Receiver[T]) ([]T, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []T
	for v, err := range rx.All(ctx) {
		if err != nil {
			return got, err
		}
		got = append(got, v)
	}
	return got, nil
}

// Records written by a program that knows nothing of ipcchan, arriving in
// pieces, are delivered whole; a record cut off by the writer's close is
// io.ErrUnexpectedEOF, not a torn value.
func TestRawFramingsReassembleAndEnd(t *testing.T) {
	u16le, _ := codec.LengthPrefixed(2, binary.LittleEndian, false)
	u32be, _ := codec.LengthPrefixed(4, binary.BigEndian, true)
	cases := []struct {
		name    string
		framing codec.Framing
		stream  string
		want    []string
		cut     bool // the stream ends inside a record
	}{
		{"fixed", codec.FixedRecords(8), "abc\x00\x00\x00\x00\x00defghijk", []string{"abc\x00\x00\x00\x00\x00", "defghijk"}, false},
		{"fixed cut", codec.FixedRecords(8), "abcdefgh1234", []string{"abcdefgh"}, true},
		{"lines", codec.DelimitedRecords('\n'), "one\ntwo\n\nthree\n", []string{"one", "two", "", "three"}, false},
		{"unended line", codec.DelimitedRecords('\n'), "one\ntw", []string{"one"}, true},
		{"u16le", u16le, "\x02\x00hi\x00\x00\x05\x00there", []string{"hi", "", "there"}, false},
		{"u32be inclusive", u32be, "\x00\x00\x00\x06hi\x00\x00\x00\x04", []string{"hi", ""}, false},
		{"u32be cut", u32be, "\x00\x00\x00\x09hi", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			rx, err := endpoints.FileReceiver[[]byte](r, ipcchan.WithFraming(c.framing))
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			dribble(t, w, []byte(c.stream), 3)
			got, err := recvAll(t, rx)
			if c.cut != errors.Is(err, io.ErrUnexpectedEOF) || (!c.cut && err != nil) {
				t.Fatalf("ended with %v (cut: %v)", err, c.cut)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %q, want %q", got, c.want)
			}
			for i := range got {
				if string(got[i]) != c.want[i] {
					t.Fatalf("got %q, want %q", got, c.want)
				}
			}
		})
	}
}

// A typed channel over each framing between two ends of a pipe: values
// round-trip, and what a framing cannot carry is refused before anything
// is written.
func TestRawFramingsTyped(t *testing.T) {
	type rec struct {
		ID    int32
		Score float64
		Name  string `c:"char[20]"`
	}
	c, err := codec.CStruct[rec]()
	if err != nil {
		t.Fatal(err)
	}
	layout, err := codec.CStructLayout[rec]() // 40 bytes; 32 on i386
	if err != nil {
		t.Fatal(err)
	}
	tx, rx, err := endpoints.PipePair[rec](ipcchan.WithCodec(c), ipcchan.WithFraming(codec.FixedRecords(layout.Size)))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	want := []rec{{1, 0.5, "first"}, {2, 1.5, "second"}}
	for _, v := range want {
		if err := tx.Send(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.SendTag(ctx, 3, rec{}); !errors.Is(err, codec.ErrUnframable) {
		t.Errorf("a tag on fixed records: %v, want ErrUnframable", err)
	}
	tx.Close()
	got, err := recvAll(t, rx)
	if err != nil || len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, %v", got, err)
	}

	ltx, lrx, err := endpoints.PipePair[string](ipcchan.WithFraming(codec.DelimitedRecords('\n')))
	if err != nil {
		t.Fatal(err)
	}
	defer lrx.Close()
	if err := ltx.Send(ctx, "two\nlines"); !errors.Is(err, codec.ErrUnframable) {
		t.Errorf("a newline in a line: %v, want ErrUnframable", err)
	}
	if err := ltx.Send(ctx, "one line"); err != nil {
		t.Fatal(err)
	}
	ltx.Close()
	if lines, err := recvAll(t, lrx); err != nil || len(lines) != 1 || lines[0] != "one line" {
		t.Fatalf("lines: %q, %v", lines, err)
	}
}

// Options an untagged framing cannot honour are refused when the endpoint
// is made, as is a fixed record too large for an atomic FIFO write.
func TestRawFramingsRefuseOptions(t *testing.T) {
	for name, opts := range map[string][]ipcchan.Option{
		"tag":       {ipcchan.WithFraming(codec.DelimitedRecords('\n')), ipcchan.WithTag(2)},
		"handshake": {ipcchan.WithFraming(codec.FixedRecords(4)), ipcchan.WithHandshake(true)},
		"atomic":    {ipcchan.WithFraming(codec.FixedRecords(8192)), ipcchan.WithAtomicWrites(true)},
	} {
		if tx, rx, err := endpoints.PipePair[[]byte](opts...); err == nil {
			tx.Close()
			rx.Close()
			t.Errorf("%s: Pipe succeeded", name)
		}
	}
}

// A line longer than the receiver's limit ends the stream with
// ErrFrameTooLarge; an oversized length-prefixed record is skipped and the
// next one is read.
func TestRawFramingsOversized(t *testing.T) {
	r, w, _ := os.Pipe()
	rx, err := endpoints.FileReceiver[[]byte](r, ipcchan.WithFraming(codec.DelimitedRecords('\n')), ipcchan.WithMaxMessageSize(8))
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	dribble(t, w, []byte("short\nthis line is too long\nafter\n"), 64)
	got, err := recvAll(t, rx)
	if !errors.Is(err, codec.ErrFrameTooLarge) || len(got) != 1 {
		t.Fatalf("got %q, %v; want one line then ErrFrameTooLarge", got, err)
	}

	u8, _ := codec.LengthPrefixed(1, binary.BigEndian, false)
	r, w, _ = os.Pipe()
	rx2, err := endpoints.FileReceiver[[]byte](r, ipcchan.WithFraming(u8), ipcchan.WithMaxMessageSize(4))
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer rx2.Close()
	dribble(t, w, []byte("\x02ok\x09too long!\x03yes"), 2)
	ctx := context.Background()
	if v, err := rx2.Recv(ctx); err != nil || string(v) != "ok" {
		t.Fatalf("first: %q, %v", v, err)
	}
	if _, err := rx2.Recv(ctx); !errors.Is(err, codec.ErrFrameTooLarge) {
		t.Fatalf("second: %v, want ErrFrameTooLarge", err)
	}
	if v, err := rx2.Recv(ctx); err != nil || string(v) != "yes" {
		t.Fatalf("third: %q, %v", v, err)
	}
}
