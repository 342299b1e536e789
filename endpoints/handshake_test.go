package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

type pointV2 struct{ X, Y, Z int32 }

func init() {
	// send-points sends three points over the pipe handed down as "out",
	// with the codec IPCCHAN_CODEC names ("json" or the default).
	childRoles["send-points"] = func() error {
		var opts []ipcchan.Option
		if os.Getenv("IPCCHAN_CODEC") == "json" {
			opts = append(opts, ipcchan.WithCodec(codec.JSON[point]()))
		}
		tx, err := endpoints.InheritSender[point]("out", opts...)
		if err != nil {
			return err
		}
		defer tx.Close()
		for i := range int32(3) {
			if err := tx.Send(context.Background(), point{i, i}); err != nil {
				return err
			}
		}
		return nil
	}
}

// A peer process built with another element type, or another codec, is
// refused with ErrHandshake before anything is decoded; the same peer with
// the same type and codec is accepted.
func TestHandshakeAcrossProcesses(t *testing.T) {
	recvFromChild := func(t *testing.T, env []string, rxOpts ...ipcchan.Option) error {
		tx, rx, err := endpoints.PipePair[point](rxOpts...)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		p := startHelper(t, "send-points", env, endpoints.Pass("out", tx))
		defer p.wait()
		for range 3 {
			if _, err := rx.Recv(context.Background()); err != nil {
				return err
			}
		}
		return nil
	}
	if err := recvFromChild(t, nil); err != nil {
		t.Fatalf("same type and codec: %v", err)
	}
	err := recvFromChild(t, []string{"IPCCHAN_CODEC=json"})
	if !errors.Is(err, ipcchan.ErrHandshake) {
		t.Fatalf("a JSON peer to a binary receiver: %v, want ErrHandshake", err)
	}
	t.Log(err)

	// Another element type: the receiver is a Receiver[pointV2].
	tx, rx, err := endpoints.PipePair[pointV2]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	f, _ := tx.File()
	tx.Close()
	childTx, err := endpoints.FileSender[point](f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := startHelper(t, "send-points", nil, endpoints.Pass("out", childTx))
	_, err = rx.Recv(context.Background())
	if !errors.Is(err, ipcchan.ErrHandshake) {
		t.Fatalf("a peer sending point to a Receiver[pointV2]: %v, want ErrHandshake", err)
	}
	t.Log(err)
	if _, again := rx.Recv(context.Background()); !errors.Is(again, ipcchan.ErrHandshake) {
		t.Fatalf("the refusal does not stick: %v", again)
	}
	p.wait()
}

// A raw peer that writes frames without a hello is refused unless the
// receiver turns the handshake off; a hello-less Sender is accepted by a
// hello-less Receiver.
func TestHandshakeOffForRawPeers(t *testing.T) {
	ctx := context.Background()
	r, w, _ := os.Pipe()
	defer w.Close()
	strict, _ := endpoints.FileReceiver[[]byte](r)
	lenient, _ := endpoints.FileReceiver[[]byte](r, ipcchan.WithHandshake(false))
	r.Close()
	defer strict.Close()
	defer lenient.Close()
	w.Write(codec.AppendFrame(nil, 0, []byte("raw")))
	if _, err := strict.Recv(ctx); !errors.Is(err, ipcchan.ErrHandshake) {
		t.Fatalf("a raw frame to a handshaking receiver: %v", err)
	}
	w.Write(codec.AppendFrame(nil, 0, []byte("raw")))
	if m, err := lenient.Recv(ctx); err != nil || string(m) != "raw" {
		t.Fatalf("a raw frame with the handshake off: %q, %v", m, err)
	}
	tx, rx, _ := endpoints.PipePair[string](ipcchan.WithHandshake(false))
	defer rx.Close()
	tx.Send(ctx, "no hello")
	tx.Close()
	if v, err := rx.Recv(ctx); err != nil || v != "no hello" {
		t.Fatalf("both sides off: %q, %v", v, err)
	}
}

// allocatedDuring returns the bytes the process allocated while f ran.
func allocatedDuring(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Until the hello has come, a frame longer than the longest hello is
// refused as a handshake error, for good, without allocating the length it
// announces; a frame of a hello's size is still checked as a hello.
func TestFirstFrameLongerThanAHello(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hello := func(name string) []byte {
		p := []byte("IPCCHAN\x00")
		p = binary.BigEndian.AppendUint16(p, 1)
		p = append(p, byte(len(name)))
		p = append(p, name...)
		return binary.BigEndian.AppendUint64(p, 0)
	}
	longest := hello(strings.Repeat("c", 255)) // 274 bytes
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		{"longest hello", codec.AppendFrame(nil, transport.HandshakeTag, longest), "encodes with codec"},
		{"a byte more", codec.AppendFrame(nil, transport.HandshakeTag, append(longest, 0)), "longer than any hello"},
		{"announcing the most", func() []byte {
			var hdr [codec.HeaderSize]byte
			codec.PutHeader(hdr[:], codec.DefaultMaxFrameSize, transport.HandshakeTag)
			return hdr[:]
		}(), "longer than any hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			rx, err := endpoints.FileReceiver[string](r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			defer rx.Close()
			defer w.Close()
			w.Write(tc.frame)
			var rerr error
			allocated := allocatedDuring(func() { _, rerr = rx.Recv(ctx) })
			if !errors.Is(rerr, ipcchan.ErrHandshake) || !strings.Contains(rerr.Error(), tc.want) {
				t.Fatalf("Recv = %v, want ErrHandshake saying %q", rerr, tc.want)
			}
			if allocated > 1<<20 {
				t.Errorf("refusing the frame allocated %d bytes", allocated)
			}
			w.Write(codec.AppendFrame(nil, 0, []byte("after")))
			if _, again := rx.Recv(ctx); !errors.Is(again, ipcchan.ErrHandshake) {
				t.Fatalf("the refusal does not stick: %v", again)
			}
		})
	}
}
