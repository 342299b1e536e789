package ipcchan_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"
	"unsafe"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/ipcchan"
)

// seenSender is a transport that records where the bytes of each message
// it is handed lie, and what they were, without copying them into a
// buffer of its own first.
type seenSender struct {
	ptr  *byte  // the first byte of the last message, as handed over
	data []byte // a copy of it, taken during the call
}

func (s *seenSender) SendMsg(_ context.Context, tag uint32, msg []byte) error {
	return s.TrySendMsg(tag, msg)
}

func (s *seenSender) TrySendMsg(_ uint32, msg []byte) error {
	s.ptr = unsafe.SliceData(msg)
	s.data = append(s.data[:0], msg...)
	return nil
}

func (s *seenSender) MaxMsgSize() int { return 1 << 20 }
func (s *seenSender) Close() error    { return nil }
func (s *seenSender) String() string  { return "seen sender" }

// A value whose encoding is its own bytes ([]byte, string, and types
// built on them) reaches a transport that copies (a byte stream, a queue)
// as those very bytes: the Sender does not copy them into its buffer
// first. Send, SendTag, TrySend and Select all do so; a value over the
// limit is refused, and a closed Sender sends nothing.
func TestSendHandsTheValuesOwnBytes(t *testing.T) {
	ctx := context.Background()
	t.Run("bytes", func(t *testing.T) {
		tr := &seenSender{}
		tx, err := ipcchan.NewSender[[]byte](tr, ipcchan.WithHandshake(false), ipcchan.WithMaxMessageSize(1000))
		if err != nil {
			t.Fatal(err)
		}
		v := []byte("the caller's own bytes")
		for name, send := range map[string]func() error{
			"Send":    func() error { return tx.Send(ctx, v) },
			"SendTag": func() error { return tx.SendTag(ctx, 5, v) },
			"TrySend": func() error { return tx.TrySend(v) },
			"Select": func() error {
				_, err := ipcchan.Select(ctx, ipcchan.OnSend(tx, v, nil))
				return err
			},
		} {
			tr.ptr, tr.data = nil, nil
			if err := send(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if tr.ptr != &v[0] || !bytes.Equal(tr.data, v) {
				t.Errorf("%s handed the transport %q at %p, want the value itself at %p", name, tr.data, tr.ptr, &v[0])
			}
		}
		if err := tx.Send(ctx, make([]byte, 1001)); !errors.Is(err, ipcchan.ErrMessageTooLarge) {
			t.Errorf("Send over the limit = %v, want ErrMessageTooLarge", err)
		}
		tx.Close()
		tr.ptr = nil
		if err := tx.Send(ctx, v); !errors.Is(err, os.ErrClosed) || tr.ptr != nil {
			t.Errorf("Send after Close = %v (transport handed %p), want os.ErrClosed and nothing", err, tr.ptr)
		}
	})
	t.Run("string", func(t *testing.T) {
		tr := &seenSender{}
		tx, err := ipcchan.NewSender[string](tr, ipcchan.WithHandshake(false))
		if err != nil {
			t.Fatal(err)
		}
		v := string(bytes.Repeat([]byte("s"), 100))
		if err := tx.Send(ctx, v); err != nil {
			t.Fatal(err)
		}
		if tr.ptr != unsafe.StringData(v) || string(tr.data) != v {
			t.Errorf("Send handed %q at %p, want the string's own bytes at %p", tr.data, tr.ptr, unsafe.StringData(v))
		}
	})
	t.Run("named", func(t *testing.T) {
		type blob []byte
		tr := &seenSender{}
		tx, err := ipcchan.NewSender[blob](tr, ipcchan.WithHandshake(false))
		if err != nil {
			t.Fatal(err)
		}
		v := blob("named bytes")
		if err := tx.Send(ctx, v); err != nil {
			t.Fatal(err)
		}
		if tr.ptr != &v[0] {
			t.Errorf("Send of a named []byte handed %p, want the value's own %p", tr.ptr, &v[0])
		}
	})
	t.Run("other codecs encode", func(t *testing.T) {
		tr := &seenSender{}
		tx, err := ipcchan.NewSender[[]byte](tr, ipcchan.WithHandshake(false), ipcchan.WithCodec(codec.JSON[[]byte]()))
		if err != nil {
			t.Fatal(err)
		}
		v := []byte("json")
		if err := tx.Send(ctx, v); err != nil {
			t.Fatal(err)
		}
		if tr.ptr == &v[0] || string(tr.data) != `"anNvbg=="` {
			t.Errorf("a JSON Sender handed %q at %p: want its encoding, in its own buffer", tr.data, tr.ptr)
		}
	})
}
