package natsjs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestDoubleAckTwice shows what the server does with a second double ack
// of a value already acknowledged (the Receiver retries its ack until the
// server confirms it: a first ack recorded whose confirmation was lost is
// then acked again). The server confirms the second one too, so the retry
// ends and the value, taken once, is not reported lost. nats.go's own
// DoubleAck refuses the second call on the client side
// (ErrMsgAlreadyAckd), which is why the Receiver sends "+ACK" itself.
func TestDoubleAckTwice(t *testing.T) {
	c := connect(t, "")
	ctx := testCtx(t)
	s, err := c.JetStream().CreateStream(ctx, jetstream.StreamConfig{Name: "ACKTWICE", Subjects: []string{"acktwice"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.JetStream().Publish(ctx, "acktwice", []byte("x")); err != nil {
		t.Fatal(err)
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "d", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(ctx); !errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
		t.Fatalf("second DoubleAck = %v, want ErrMsgAlreadyAckd (client side)", err)
	}
	for i := range 2 {
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		resp, err := c.NATS().RequestWithContext(actx, m.Reply(), []byte("+ACK"))
		cancel()
		if err != nil {
			t.Fatalf("raw +ACK request #%d after the first ack: %v", i+1, err)
		}
		t.Logf("raw +ACK request #%d answered: %q %v", i+1, resp.Data, resp.Header)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Fatalf("consumer after the acks: %d ack pending, %d pending", info.NumAckPending, info.NumPending)
	}
}
