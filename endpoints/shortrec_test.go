package endpoints_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// These tests talk to testdata/shortrec.c: classic FIFO writers that write
// strlen(msg) bytes, or a struct without its tail, in one write() and
// exit, and the classic reader that takes each read() as one message.

// shortrecFIFO makes a FIFO, opens a receiver on it with opts, and holds
// a write end of its own, as a daemon serving short-lived writers does, so
// that the stream does not end each time one of them closes. It returns
// the path, the receiver and a func closing the held write end (the
// stream then ends once the writers are gone).
func shortrecFIFO[T any](t *testing.T, ctx context.Context, opts ...ipcchan.Option) (string, *ipcchan.Receiver[T], func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fifo")
	if err := endpoints.CreateFIFO(path); err != nil {
		t.Fatal(err)
	}
	rx, err := endpoints.OpenFIFOReceiver[T](ctx, path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rx.Close() })
	hold, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hold.Close() })
	return path, rx, func() { hold.Close() }
}

// runShortrec runs testdata/shortrec.c with args to its end.
func runShortrec(t *testing.T, ctx context.Context, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, cPeer(t, "shortrec"), args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("shortrec %s: %v", strings.Join(args, " "), err)
	}
}

// Short-lived C writers, one after another, each writing strlen(msg)
// bytes and exiting: each write is one record, as it is; a record of
// exactly the size is whole; a longer write comes as several records of
// at most the size (the framing cannot tell it from several writes, nor
// can the C reader); a write of 0 bytes is no record at all.
func TestReadRecordsFromCWriters(t *testing.T) {
	ctx := testCtx(t)
	const size = 16
	path, rx, release := shortrecFIFO[string](t, ctx,
		ipcchan.WithFraming(codec.ReadRecords(size)), ipcchan.WithCodec(codec.String()))
	steps := []struct {
		write string
		want  []string
	}{
		{"hello", []string{"hello"}},
		{"x", []string{"x"}},
		{"exactly 16 bytes", []string{"exactly 16 bytes"}},
		{"", nil}, // nothing reaches the reader
		{"a write longer than sixteen", []string{"a write longer t", "han sixteen"}},
		{"after", []string{"after"}},
	}
	for i := range 20 {
		steps = append(steps, struct {
			write string
			want  []string
		}{fmt.Sprintf("writer %d", i), []string{fmt.Sprintf("writer %d", i)}})
	}
	for _, st := range steps {
		// The writer has exited before the reader looks: one record per
		// open, the shape in which "one read, one message" holds.
		runShortrec(t, ctx, "write", path, st.write)
		for _, want := range st.want {
			got, err := rx.Recv(ctx)
			if err != nil || got != want {
				t.Fatalf("after writing %q: Recv = %q, %v; want %q", st.write, got, err, want)
			}
		}
	}
	release()
	if got, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("after the last writer: %q, %v; want io.EOF (the empty write delivered nothing)", got, err)
	}
}

// Many C writers at once against one receiver: what the kernel promises
// holds — each write of at most PIPE_BUF bytes lies whole in the stream,
// never interleaved with another — and what it does not is visible: once
// writes wait in the FIFO together, a read takes as many of their bytes
// as fit, so record boundaries fall anywhere (several messages in one
// record, a message cut where a read of size bytes ends). Joined, the
// records hold every message exactly once, whole.
func TestReadRecordsConcurrentCWriters(t *testing.T) {
	ctx := testCtx(t)
	const writers = 40
	path, rx, release := shortrecFIFO[string](t, ctx,
		ipcchan.WithFraming(codec.ReadRecords(4096)), ipcchan.WithCodec(codec.String()))
	bin := cPeer(t, "shortrec") // here, not in the goroutines: it may skip the test
	errs := make(chan error, writers)
	total := 0
	for i := range writers {
		msg := fmt.Sprintf("[%d:%s]", i, strings.Repeat("x", i*37))
		total += len(msg)
		go func() {
			cmd := exec.CommandContext(ctx, bin, "write", path, msg)
			cmd.Stderr = os.Stderr
			errs <- cmd.Run()
		}()
	}
	var stream strings.Builder
	records := 0
	for stream.Len() < total {
		rec, err := rx.Recv(ctx)
		if err != nil {
			t.Fatalf("after %d of %d bytes: %v", stream.Len(), total, err)
		}
		if len(rec) == 0 || len(rec) > 4096 {
			t.Fatalf("a record of %d bytes", len(rec))
		}
		records++
		stream.WriteString(rec)
	}
	token := regexp.MustCompile(`^\[(\d+):(x*)\]`)
	seen := map[int]bool{}
	for rest := stream.String(); rest != ""; {
		m := token.FindStringSubmatch(rest)
		var id int
		if m != nil {
			fmt.Sscan(m[1], &id)
		}
		if m == nil || len(m[2]) != id*37 || seen[id] {
			t.Fatalf("the stream holds a torn, interleaved or repeated message at %.60q", rest)
		}
		seen[id] = true
		rest = rest[len(m[0]):]
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("C writer: %v", err)
		}
	}
	release()
	if _, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("after the writers: %v, want io.EOF", err)
	}
	t.Logf("%d messages in %d records", writers, records)
}

// cRec is the C writer's struct { int id; char text[60]; }.
type cRec struct {
	ID   int32
	Text string `c:"char[60]"`
}

// A C writer that writes its struct only up to the text's NUL: with
// PaddedRecords the receiver gets the whole struct, its unwritten tail
// zero, and decodes it as a 64-byte C struct. FixedRecords(64) could only
// wait for the missing bytes and end with io.ErrUnexpectedEOF.
func TestPaddedRecordsFromCStructWriters(t *testing.T) {
	ctx := testCtx(t)
	c, err := codec.CStruct[cRec]()
	if err != nil {
		t.Fatal(err)
	}
	path, rx, release := shortrecFIFO[cRec](t, ctx,
		ipcchan.WithFraming(codec.PaddedRecords(64)), ipcchan.WithCodec(c))
	texts := []string{"", "short", strings.Repeat("y", 59)} // 5, 10 and 64 bytes written
	for i, text := range texts {
		runShortrec(t, ctx, "write-struct", path, fmt.Sprint(i+1), text)
		got, err := rx.Recv(ctx)
		if err != nil || got != (cRec{ID: int32(i + 1), Text: text}) {
			t.Fatalf("struct %d: %+v, %v", i+1, got, err)
		}
	}
	release()
	if _, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("at the end: %v, want io.EOF", err)
	}
}

// A Go sender in place of the C writer, for the classic C reader that
// answers each read: every record leaves in one write of its own, as it
// is (ReadRecords) or padded to the size (PaddedRecords); records that
// cannot be one read are refused before anything is written.
func TestReadRecordsGoSenderCReader(t *testing.T) {
	for _, f := range []codec.ReadFraming{codec.ReadRecords(32), codec.PaddedRecords(32)} {
		t.Run(f.String(), func(t *testing.T) {
			ctx := testCtx(t)
			path := filepath.Join(t.TempDir(), "fifo")
			if err := endpoints.CreateFIFO(path); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(ctx, cPeer(t, "shortrec"), "read", path, "32")
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			out := bufio.NewScanner(stdout)
			tx, err := endpoints.OpenFIFOSender[string](ctx, path, ipcchan.WithFraming(f), ipcchan.WithCodec(codec.String()))
			if err != nil {
				t.Fatal(err)
			}
			_, padded := f.ReadSize()
			for _, msg := range []string{"one", "two", strings.Repeat("z", 32), "3"} {
				if err := tx.Send(ctx, msg); err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("%d %s", len(msg), msg)
				if padded {
					want = "32 " + msg
				}
				// The reader answers before the next write: one read, one message.
				if !out.Scan() || out.Text() != want {
					t.Fatalf("C reader after %q: %q, want %q", msg, out.Text(), want)
				}
			}
			for _, bad := range []string{"", strings.Repeat("z", 33)} {
				err := tx.Send(ctx, bad)
				if padded && bad == "" {
					if err != nil {
						t.Fatalf("empty padded record: %v", err)
					}
					if !out.Scan() || out.Text() != "32 " {
						t.Fatalf("C reader after an empty padded record: %q", out.Text())
					}
					continue
				}
				want := codec.ErrUnframable // an empty ReadRecords record
				if bad != "" {
					want = ipcchan.ErrMessageTooLarge
				}
				if !errors.Is(err, want) {
					t.Fatalf("Send of %d bytes: %v, want %v", len(bad), err, want)
				}
			}
			if err := tx.Close(); err != nil {
				t.Fatal(err)
			}
			if out.Scan() {
				t.Fatalf("C reader got more: %q", out.Text())
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("C reader: %v", err)
			}
		})
	}
}
