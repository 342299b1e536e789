package ipcchan_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ipcchan/go/ipcchan"
)

// limitedMem is a memReceiver that refuses messages over the limit its
// Receiver sets, as a byte stream does (transport.MsgSizeLimiter).
type limitedMem struct {
	memReceiver
	limit  int
	limits []int
}

func (l *limitedMem) LimitMsgSize(n int) { l.limit = n; l.limits = append(l.limits, n) }

func (l *limitedMem) RecvMsg(ctx context.Context, deliver func(uint32, []byte) error) error {
	return l.memReceiver.RecvMsg(ctx, func(tag uint32, p []byte) error { return l.check(tag, p, deliver) })
}

func (l *limitedMem) TryRecvMsg(deliver func(uint32, []byte) error) error {
	return l.memReceiver.TryRecvMsg(func(tag uint32, p []byte) error { return l.check(tag, p, deliver) })
}

func (l *limitedMem) check(tag uint32, p []byte, deliver func(uint32, []byte) error) error {
	if l.limit > 0 && len(p) > l.limit {
		return fmt.Errorf("%w: %d bytes, limit %d", ipcchan.ErrFrameTooLarge, len(p), l.limit)
	}
	return deliver(tag, p)
}

// A Receiver with the handshake on holds its transport to a hello's size
// until the hello has come, then lifts the limit; a longer first message is
// a handshake error that stays.
func TestReceiverLimitsTheTransportUntilTheHello(t *testing.T) {
	long := strings.Repeat("x", 1000)
	for _, peerHello := range []bool{true, false} {
		m := newMem(4)
		tx, err := ipcchan.NewSender[string](m.sender(), ipcchan.WithHandshake(peerHello))
		if err != nil {
			t.Fatal(err)
		}
		m.finish()
		l := &limitedMem{memReceiver: memReceiver{m}}
		rx, err := ipcchan.NewReceiver[string](l, ipcchan.WithHandshake(true))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(l.limits, []int{274}) {
			t.Fatalf("limits set before the first receive: %v, want [274]", l.limits)
		}
		ctx := context.Background()
		tx.Send(ctx, long)
		tx.Send(ctx, long)
		v, err := rx.Recv(ctx)
		if peerHello {
			if err != nil || v != long || !slices.Equal(l.limits, []int{274, 0}) {
				t.Fatalf("after a hello: %d bytes, %v; limits %v", len(v), err, l.limits)
			}
			if v, err := rx.TryRecv(); err != nil || v != long {
				t.Fatalf("TryRecv after a hello: %d bytes, %v", len(v), err)
			}
		} else {
			if !errors.Is(err, ipcchan.ErrHandshake) || !errors.Is(err, ipcchan.ErrFrameTooLarge) {
				t.Fatalf("a long first message: %v, want ErrHandshake", err)
			}
			if _, again := rx.TryRecv(); !errors.Is(again, ipcchan.ErrHandshake) {
				t.Fatalf("the refusal does not stick: %v", again)
			}
		}
		tx.Close()
		rx.Close()
	}
}
