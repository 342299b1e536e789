package ipcchan_test

import (
	"context"
	"io"
	"os"
	"sync"

	"github.com/ipcchan/go/ipcchan"
)

// memTransport is an in-memory message transport for testing the typed
// layer alone: a buffered channel of messages. It has no descriptor, so a
// Select polls it.
type memTransport struct {
	msgs      chan memMsg
	closeOnce sync.Once
	closed    chan struct{}
	senders   sync.WaitGroup
	eof       chan struct{}
}

type memMsg struct {
	tag     uint32
	payload []byte
}

func newMem(capacity int) *memTransport {
	m := &memTransport{msgs: make(chan memMsg, capacity), closed: make(chan struct{}), eof: make(chan struct{})}
	return m
}

// sender returns a sending half; the stream ends when every sender closed.
func (m *memTransport) sender() *memSender {
	m.senders.Add(1)
	return &memSender{m: m, closed: make(chan struct{})}
}

func (m *memTransport) finish() {
	go func() { m.senders.Wait(); close(m.eof) }()
}

type memSender struct {
	m      *memTransport
	once   sync.Once
	closed chan struct{}
}

func (s *memSender) SendMsg(ctx context.Context, tag uint32, msg []byte) error {
	select {
	case s.m.msgs <- memMsg{tag, append([]byte(nil), msg...)}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
		return os.ErrClosed
	}
}

func (s *memSender) TrySendMsg(tag uint32, msg []byte) error {
	select {
	case s.m.msgs <- memMsg{tag, append([]byte(nil), msg...)}:
		return nil
	default:
		return ipcchan.ErrWouldBlock
	}
}

func (s *memSender) MaxMsgSize() int { return 1 << 20 }
func (s *memSender) String() string  { return "mem sender" }
func (s *memSender) Close() error {
	s.once.Do(func() { close(s.closed); s.m.senders.Done() })
	return nil
}

type memReceiver struct{ m *memTransport }

func (r memReceiver) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	select {
	case msg := <-r.m.msgs:
		return deliver(msg.tag, msg.payload)
	default:
	}
	select {
	case msg := <-r.m.msgs:
		return deliver(msg.tag, msg.payload)
	case <-ctx.Done():
		return ctx.Err()
	case <-r.m.closed:
		return os.ErrClosed
	case <-r.m.eof:
		select {
		case msg := <-r.m.msgs:
			return deliver(msg.tag, msg.payload)
		default:
			return io.EOF
		}
	}
}

func (r memReceiver) TryRecvMsg(deliver func(uint32, []byte) error) error {
	// Messages first: end of stream only once they are all taken.
	select {
	case msg := <-r.m.msgs:
		return deliver(msg.tag, msg.payload)
	default:
	}
	select {
	case <-r.m.eof:
		select {
		case msg := <-r.m.msgs:
			return deliver(msg.tag, msg.payload)
		default:
			return io.EOF
		}
	default:
		return ipcchan.ErrWouldBlock
	}
}

func (r memReceiver) String() string { return "mem receiver" }
func (r memReceiver) Close() error {
	r.m.closeOnce.Do(func() { close(r.m.closed) })
	return nil
}

// memPair returns a typed channel over a fresh memTransport with one sender.
func memPair[T any](capacity int, opts ...ipcchan.Option) (*ipcchan.Sender[T], *ipcchan.Receiver[T]) {
	m := newMem(capacity)
	tx, err := ipcchan.NewSender[T](m.sender(), opts...)
	if err != nil {
		panic(err)
	}
	m.finish()
	rx, err := ipcchan.NewReceiver[T](memReceiver{m}, opts...)
	if err != nil {
		panic(err)
	}
	return tx, rx
}
