package endpoints_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// seqpacketPair connects a unixpacket Sender and Receiver, each with its
// own options.
func seqpacketPair(t *testing.T, txOpts, rxOpts []ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte]) {
	t.Helper()
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "ipcchan-seqpacket-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	l, err := endpoints.Listen[[]byte, []byte](ctx, "unixpacket", filepath.Join(dir, "s"), rxOpts...)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := endpoints.Dial[[]byte, []byte](ctx, "unixpacket", l.Addr(), txOpts...)
	if err != nil {
		t.Fatal(err)
	}
	server, err := l.Accept(ctx)
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	client.Receiver().Close()
	server.Sender().Close()
	tx, rx := client.Sender(), server.Receiver()
	t.Cleanup(func() { rx.Close(); tx.Close() })
	return tx, rx
}

// An empty record on a seqpacket socket reads as 0 bytes, like the end of
// the stream; it is the end only once the peer has hung up with nothing
// queued. Raw records arrive as they are, empty ones too; the records
// after an empty one are not lost to a false end.
func TestSeqpacketEmptyRecordIsNoEnd(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	raw := []ipcchan.Option{ipcchan.WithForeignPeer()}
	tx, rx := seqpacketPair(t, raw, raw)
	send := func(vs ...string) {
		t.Helper()
		for _, v := range vs {
			if err := tx.Send(ctx, []byte(v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	recv := func(want string) {
		t.Helper()
		if v, err := rx.Recv(ctx); err != nil || string(v) != want {
			t.Fatalf("Recv = %q, %v; want %q", v, err, want)
		}
	}
	// The peer still connected: an empty record, then what follows.
	send("", "a")
	recv("")
	recv("a")
	// The peer gone by the time they are read: records queued behind an
	// empty one still arrive.
	send("", "b", "", "c")
	tx.Close()
	for _, want := range []string{"", "b", "", "c"} {
		recv(want)
	}
	if v, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("after the last record Recv = %q, %v; want io.EOF", v, err)
	}

	// A framed receiver refuses the empty record (shorter than its tag)
	// and goes on.
	tx, rx = seqpacketPair(t, raw, nil)
	if err := tx.Send(ctx, []byte{}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, []byte("\x00\x00\x00\x00next")); err != nil {
		t.Fatal(err)
	}
	if v, err := rx.Recv(ctx); !errors.Is(err, ipcchan.ErrDecode) {
		t.Fatalf("framed Recv of an empty record = %q, %v; want ErrDecode", v, err)
	}
	if v, err := rx.Recv(ctx); err != nil || string(v) != "next" {
		t.Fatalf("framed Recv after the empty record = %q, %v; want \"next\"", v, err)
	}
}
