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

// roomReceiver is a transport that serves one message, reading it into the
// room a receive offers (as a byte stream does for a large frame) when it
// fits, and records what it was offered.
type roomReceiver struct {
	msg      []byte
	offered  []byte // the room of the last RecvMsgRoom
	plain    int    // RecvMsg calls
	intoRoom bool   // the last message was read into the room
}

func (r *roomReceiver) RecvMsgRoom(_ context.Context, room []byte, deliver func(uint32, []byte) error) error {
	r.offered = room
	if len(r.msg) <= len(room) {
		r.intoRoom = true
		n := copy(room, r.msg)
		return deliver(1, room[:n])
	}
	return deliver(1, r.msg)
}

func (r *roomReceiver) RecvMsg(_ context.Context, deliver func(uint32, []byte) error) error {
	r.plain++
	return deliver(1, r.msg)
}

func (r *roomReceiver) TryRecvMsg(deliver func(uint32, []byte) error) error {
	return r.RecvMsg(context.Background(), deliver)
}

func (r *roomReceiver) Close() error   { return nil }
func (r *roomReceiver) String() string { return "room receiver" }

// RecvInto offers the memory of its destination to a transport that can
// read a payload straight into it (transport.RoomReceiver); the payload
// read there becomes the value as it is. Recv, which has no destination
// of the caller's, and a codec that does not decode into a value's own
// memory receive as before.
func TestRecvIntoOffersTheDestination(t *testing.T) {
	ctx := context.Background()
	msg := bytes.Repeat([]byte("payload-"), 1000)
	tr := &roomReceiver{msg: msg}
	rx, err := ipcchan.NewReceiver[[]byte](tr, ipcchan.WithHandshake(false))
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]byte, 3, 10000)
	mem := &dst[:1][0]
	if err := rx.RecvInto(ctx, &dst); err != nil {
		t.Fatal(err)
	}
	if len(tr.offered) != cap(dst) || &tr.offered[0] != mem {
		t.Fatalf("RecvInto offered %d bytes at %p, want the destination's %d at %p", len(tr.offered), unsafe.SliceData(tr.offered), cap(dst), mem)
	}
	if !tr.intoRoom || !bytes.Equal(dst, msg) || &dst[0] != mem {
		t.Fatalf("RecvInto: %d bytes at %p (read into the room: %v), want the message in the destination's memory at %p", len(dst), &dst[0], tr.intoRoom, mem)
	}

	// Too small a destination: the transport delivers from its own
	// memory, and the value is a copy.
	tr.intoRoom = false
	small := make([]byte, 0, 10)
	if err := rx.RecvInto(ctx, &small); err != nil || tr.intoRoom || !bytes.Equal(small, msg) {
		t.Fatalf("RecvInto into 10 bytes: %v, read into the room: %v, %d bytes", err, tr.intoRoom, len(small))
	}

	// Recv decodes into a value of its own: no room to offer.
	tr.offered, tr.plain = nil, 0
	if v, err := rx.Recv(ctx); err != nil || !bytes.Equal(v, msg) || tr.offered != nil || tr.plain != 1 {
		t.Fatalf("Recv: %v, offered %d bytes, %d plain receives", err, len(tr.offered), tr.plain)
	}

	// A codec that decodes otherwise (JSON) offers nothing either.
	tr.msg = []byte(`"anNvbg=="`)
	jrx, err := ipcchan.NewReceiver[[]byte](tr, ipcchan.WithHandshake(false), ipcchan.WithCodec(codec.JSON[[]byte]()))
	if err != nil {
		t.Fatal(err)
	}
	tr.offered, tr.plain = nil, 0
	buf := make([]byte, 0, 100)
	if err := jrx.RecvInto(ctx, &buf); err != nil || string(buf) != "json" || tr.offered != nil || tr.plain != 1 {
		t.Fatalf("JSON RecvInto: %q, %v, offered %d bytes, %d plain receives", buf, err, len(tr.offered), tr.plain)
	}
}
