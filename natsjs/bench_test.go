package natsjs_test

import (
	"testing"

	"github.com/ipcchan/go/natsjs"
)

// BenchmarkSendRecv is one value's round through a channel on the
// embedded server (file store, SyncAlways): a Send (publish and the
// stream's acknowledgement) then a Recv (pull, deliver, double ack), one
// value in flight — the latency a caller sees, ns/op per value.
func BenchmarkSendRecv(b *testing.B) {
	for _, mem := range []bool{false, true} {
		name := "file"
		if mem {
			name = "memory"
		}
		b.Run(name, func(b *testing.B) {
			c := connect(b, "")
			ctx := testCtx(b)
			cfg := natsjs.ChannelConfig{Memory: mem}
			tx, err := natsjs.NewSender[[]byte](ctx, c, "bench", cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			rx, err := natsjs.NewReceiver[[]byte](ctx, c, "bench", cfg, natsjs.ReceiverConfig{})
			if err != nil {
				b.Fatal(err)
			}
			defer rx.Close()
			msg := make([]byte, 64)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				if err := tx.Send(ctx, msg); err != nil {
					b.Fatal(err)
				}
				if err := rx.RecvInto(ctx, &buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSend is a Send alone (publish, acknowledged by the stream).
func BenchmarkSend(b *testing.B) {
	c := connect(b, "")
	ctx := testCtx(b)
	cfg := natsjs.ChannelConfig{MaxMsgs: 1 << 20, MaxBytes: 1 << 30}
	tx, err := natsjs.NewSender[[]byte](ctx, c, "benchsend", cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Close()
	msg := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if err := tx.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
	}
}
