package endpoints_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// queueCase makes a Sender and a Receiver, each with its own options, on
// a fresh queue of one family whose messages hold at most limit bytes.
type queueCase struct {
	name  string
	limit int
	pair  func(t *testing.T, txOpts, rxOpts []ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte])
}

func queueCases(t *testing.T) []queueCase {
	msgmax, err := os.ReadFile("/proc/sys/kernel/msgmax")
	if err != nil {
		t.Fatal(err)
	}
	sysvLimit, err := strconv.Atoi(strings.TrimSpace(string(msgmax)))
	if err != nil {
		t.Fatal(err)
	}
	return []queueCase{
		{"posixmq", 64, func(t *testing.T, txOpts, rxOpts []ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte]) {
			name := endpoints.ObjectName("eos")
			if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 64}); err != nil {
				t.Fatal(err)
			}
			defer endpoints.RemoveMQ(name)
			rx, err := endpoints.OpenMQReceiver[[]byte](name, rxOpts...)
			if err != nil {
				t.Fatal(err)
			}
			tx, err := endpoints.OpenMQSender[[]byte](name, txOpts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rx.Close(); tx.Close() })
			return tx, rx
		}},
		{"sysvmq", sysvLimit, func(t *testing.T, txOpts, rxOpts []ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte]) {
			q, err := newTestQueue()
			if err != nil {
				t.Fatal(err)
			}
			tx, err := endpoints.SysVSender[[]byte](q, txOpts...)
			if err != nil {
				t.Fatal(err)
			}
			rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{}, rxOpts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { rx.Close(); tx.Close() })
			return tx, rx
		}},
	}
}

// recvExactly receives want, value by value, then expects end.
func recvExactly(t *testing.T, ctx context.Context, rx *ipcchan.Receiver[[]byte], want [][]byte, end error) {
	t.Helper()
	for i, w := range want {
		v, err := rx.Recv(ctx)
		if err != nil {
			t.Fatalf("value %d (%.40q): %v", i, w, err)
		}
		if !bytes.Equal(v, w) {
			t.Fatalf("value %d: got %.40q (%d bytes), want %.40q (%d bytes)", i, v, len(v), w, len(w))
		}
	}
	if end == nil {
		return
	}
	_, err := rx.Recv(ctx)
	if !errors.Is(err, end) {
		t.Fatalf("after the last value: %v, want %v", err, end)
	}
}

// Values that look like a queue's end-of-stream marker — the marker
// itself, its prefix, the escape form, an empty value, values at the
// queue's size limit — arrive as values, exactly; an escaped value that no
// longer fits is refused with ErrMessageTooLarge saying why, and the
// stream goes on.
func TestQueueLookalikesAreValues(t *testing.T) {
	for _, qc := range queueCases(t) {
		t.Run(qc.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			tx, rx := qc.pair(t, nil, nil)
			ctx := testCtx(t)
			var want [][]byte
			want = append(want, queueLookalikes...)
			want = append(want,
				nil,
				[]byte(queuePrefix+strings.Repeat("p", qc.limit-len(queueEscape)-len(queuePrefix))), // fits escaped, just
				[]byte(strings.Repeat("v", qc.limit)),                                               // fits as it is, just
				[]byte(queueMarker))
			tooLong := [][]byte{
				[]byte(queuePrefix + strings.Repeat("p", qc.limit-len(queueEscape)-len(queuePrefix)+1)),
				[]byte(queueMarker + strings.Repeat("m", qc.limit-len(queueMarker))),
			}
			sent := make(chan error, 1)
			go func() {
				sent <- func() error {
					for i, v := range want {
						var err error
						if i%2 == 0 {
							err = tx.Send(ctx, v)
						} else {
							err = tx.TrySend(v) // the same rules without waiting
							for err == ipcchan.ErrWouldBlock {
								time.Sleep(time.Millisecond)
								err = tx.TrySend(v)
							}
						}
						if err != nil {
							return err
						}
					}
					for _, v := range tooLong {
						err := tx.Send(ctx, v)
						if !errors.Is(err, ipcchan.ErrMessageTooLarge) || !strings.Contains(err.Error(), "escaped") {
							return errors.New("a value whose escaped form does not fit: Send = " + errString(err) + ", want ErrMessageTooLarge saying why")
						}
					}
					if err := tx.Send(ctx, []byte("after")); err != nil {
						return err
					}
					return tx.Close()
				}()
			}()
			recvExactly(t, ctx, rx, append(want, []byte("after")), io.EOF)
			if err := <-sent; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// The encoding on the queue is the README's, so that a C program can speak
// it: a value that begins with the marker's 15-byte prefix goes as the
// prefix, 0x02, then the value; any other value as it is; Close posts the
// marker. And a C program that sends so is read back exactly, its marker
// ending the stream. Raw ends see and send exactly these bytes.
func TestQueueEscapeOnTheWire(t *testing.T) {
	for _, qc := range queueCases(t) {
		t.Run(qc.name, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			ctx := testCtx(t)
			raw := []ipcchan.Option{ipcchan.WithForeignPeer()}
			// A Sender escapes; a raw Receiver sees the bytes on the queue.
			tx, rawRx := qc.pair(t, nil, raw)
			values := [][]byte{[]byte(queueMarker), []byte("plain"), []byte(queuePrefix), nil, []byte(queueEscape + "x")}
			wire := [][]byte{[]byte(queueEscape + queueMarker), []byte("plain"), []byte(queueEscape + queuePrefix), nil, []byte(queueEscape + queueEscape + "x"), []byte(queueMarker)}
			for _, v := range values {
				if err := tx.Send(ctx, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := tx.Close(); err != nil {
				t.Fatal(err)
			}
			recvExactly(t, ctx, rawRx, wire, nil)
			if _, err := rawRx.TryRecv(); err != ipcchan.ErrWouldBlock {
				t.Fatalf("a raw receiver after the marker: %v, want ErrWouldBlock (it never ends the stream)", err)
			}

			// The other way: what a C program implementing the README
			// sends, through a raw Sender, is read by a Receiver.
			rawTx, rx := qc.pair(t, raw, nil)
			for _, w := range wire {
				if err := rawTx.Send(ctx, w); err != nil {
					t.Fatal(err)
				}
			}
			if err := rawTx.Close(); err != nil {
				t.Fatal(err)
			}
			recvExactly(t, ctx, rx, values, io.EOF)
		})
	}
}

// Priority bands read the same encoding: a band takes lookalikes of the
// marker, at any priority, as values, whether it delivers them itself or
// holds them for another band, and every band ends at the real marker.
func TestPosixMQBandsLookalikes(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := mqTestName(t)
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	bands, err := endpoints.OpenMQBands[[]byte](name, []uint32{1})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bands {
		defer b.Close()
	}
	tx, err := endpoints.OpenMQSender[[]byte](name)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	high := [][]byte{[]byte(queueMarker), []byte(queueEscape)}
	low := [][]byte{[]byte(queueMarker), []byte(queueEscape + queueMarker), nil}
	for i := range 3 {
		if i < len(low) {
			if err := tx.SendTag(ctx, 0, low[i]); err != nil {
				t.Fatal(err)
			}
		}
		if i < len(high) {
			if err := tx.SendTag(ctx, 7, high[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	// The low band, read first, holds the high band's messages for it.
	recvExactly(t, ctx, bands[1], low, io.EOF)
	recvExactly(t, ctx, bands[0], high, io.EOF)
}

// A POSIX queue whose messages are too small for the marker carries no
// marker, so it escapes nothing: a 15-byte value equal to the marker's
// prefix goes as it is.
func TestPosixMQTooSmallForMarker(t *testing.T) {
	ipcchantest.CheckFDs(t)
	name := mqTestName(t)
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 4, MsgSize: len(queuePrefix)}); err != nil {
		t.Fatal(err)
	}
	rx, err := endpoints.OpenMQReceiver[[]byte](name)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := endpoints.OpenMQSender[[]byte](name)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	ctx := testCtx(t)
	if err := tx.Send(ctx, []byte(queuePrefix)); err != nil {
		t.Fatal(err)
	}
	recvExactly(t, ctx, rx, [][]byte{[]byte(queuePrefix)}, nil)
}
