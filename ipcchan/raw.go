package ipcchan

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipcchan/go/ipcchan/transport"
)

// SendRaw sends one message whose encoded bytes fill writes, bypassing the
// codec: fill gets room for n bytes and returns how many it wrote. On a
// shared-memory ring the room is the ring itself, so the message is written
// once, where the receiver reads it (zero-copy); on other transports it is
// the Sender's own buffer, sent as Send sends. The bytes go as they are,
// with tag, and must be what the receiver decodes: for the default codec
// of []byte or string, any bytes.
//
// fill runs with the Sender's lock held (other sends wait) and must not
// keep the slice or call the Sender. If fill returns an error, or a count
// outside 0..n, nothing is sent and SendRaw returns an error wrapping it. n over the
// channel's largest message is refused with ErrMessageTooLarge before fill
// runs. Otherwise SendRaw waits and fails as Send does.
func (s *Sender[T]) SendRaw(ctx context.Context, tag uint32, n int, fill func(msg []byte) (int, error)) error {
	if err := s.misuse("send", ctx); err != nil {
		return err
	}
	switch {
	case fill == nil:
		return s.wrap(errors.New("SendRaw with a nil fill function"))
	case n < 0:
		return s.wrap(fmt.Errorf("SendRaw of %d bytes", n))
	case n > s.max:
		return s.tooLarge(n)
	case tag == handshakeTag && s.hello != nil:
		return s.wrap(errHelloTag)
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.unlock()
	if err := s.greet(ctx, true); err != nil {
		return s.wrap(err)
	}
	if t, ok := s.t.(transport.InPlaceSender); ok {
		return s.wrap(t.SendInPlace(ctx, tag, n, fill))
	}
	buf := s.buf[:0]
	if cap(buf) < n {
		buf = make([]byte, n)
		if n <= 1<<20 {
			s.buf = buf
		}
	}
	m, err := fill(buf[:n:n])
	if err == nil {
		err = transport.CheckFilled(m, n)
	}
	if err != nil {
		return s.wrap(err)
	}
	return s.wrap(s.t.SendMsg(ctx, tag, buf[:m]))
}

// RecvRaw waits for the next message and calls read with its tag and its
// encoded bytes, bypassing the codec. On a shared-memory ring the bytes are
// the record in the ring itself (zero-copy), freed when read returns; on
// other transports, the receiver's buffer. read must not keep the slice or
// call the Receiver. The message is consumed whatever read returns, and
// RecvRaw returns an error wrapping read's. A value that Chan read ahead comes first,
// encoded again with the codec.
//
// RecvRaw waits and fails as Recv does: io.EOF at the end of the stream,
// ctx.Err() if ctx ends first, having taken nothing.
func (r *Receiver[T]) RecvRaw(ctx context.Context, read func(tag uint32, msg []byte) error) error {
	if err := r.misuse("recv", ctx); err != nil {
		return err
	}
	if read == nil {
		return r.wrap(errors.New("RecvRaw with a nil read function"))
	}
	if err := r.begin(ctx, nil); err != nil {
		return err
	}
	defer r.endRecv()
	if it, ok := r.ahead.pop(); ok {
		msg, err := r.codec.Append(nil, it.v)
		if err != nil {
			return r.wrap(fmt.Errorf("encode a value read ahead: %w", err))
		}
		return r.wrap(read(it.tag, msg))
	}
	r.raw = read
	err := r.recvMsg(ctx)
	r.raw = nil
	return r.wrap(err)
}
