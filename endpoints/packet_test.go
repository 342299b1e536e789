package endpoints_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/ipcchan/transport"
)

var abstractSeq atomic.Int64

// abstractName returns a fresh name in the abstract namespace.
func abstractName(prefix string) string {
	return "@ipcchan-" + prefix + "-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(abstractSeq.Add(1), 10)
}

func packetPair(network, address string, opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
	ctx := context.Background()
	rx, addr, err := endpoints.ListenPacket[[]byte](ctx, network, address, receiverSide(opts)...)
	if err != nil {
		return nil, nil, err
	}
	tx, err := endpoints.DialPacket[[]byte](ctx, network, addr, senderSide(opts)...)
	if err != nil {
		rx.Close()
		return nil, nil, err
	}
	return tx, rx, nil
}

// dgramLookalikes are values whose bytes are a datagram end-of-stream
// marker (the tag 0xFFFFFFFF alone) or begin with one.
var dgramLookalikes = [][]byte{{0xFF, 0xFF, 0xFF, 0xFF}, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, {0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF}}

var unixgramHarness = &ipcchantest.Harness{
	Name:          "unixgram",
	CountsSenders: true,
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return packetPair("unixgram", abstractName("dgram"), opts...)
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   128 << 10, // a Unix datagram must fit the socket's send buffer
	WatchPeer:    true,      // no kernel end of stream: a killed sender is seen through its pid
	Lookalikes:   dgramLookalikes,
}

// The kernel ends a seqpacket stream, as a byte stream's: the harness
// neither counts senders nor lingers (a Close holds nothing back), and the
// endpoints refuse the options that would.
var unixpacketHarness = &ipcchantest.Harness{
	Name: "unixpacket",
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		dir, err := os.MkdirTemp("", "ipcchan-seqpacket-")
		if err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(dir)
		return socketPair("unixpacket", filepath.Join(dir, "s"), without(opts, transport.OptLinger)...)
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   128 << 10,
	Lookalikes:   dgramLookalikes,
}

// UDP keeps neither order nor delivery under load, and never blocks a
// sender: the suite skips exactly the tests that rest on those rules.
const (
	udpLossy   = "UDP drops datagrams when the receiver's buffer overflows and has no back-pressure: this volume loses messages by design"
	udpNoBlock = "a UDP send never blocks: the kernel drops what does not fit, so the transport never fills"
)

var udpHarness = &ipcchantest.Harness{
	Name:          "udp",
	CountsSenders: true,
	Pair: func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error) {
		return packetPair("udp", "127.0.0.1:0", opts...)
	},
	Give:         give,
	TakeSender:   endpoints.InheritSender[[]byte],
	TakeReceiver: endpoints.InheritReceiver[[]byte],
	MaxMessage:   65000,
	Lookalikes:   dgramLookalikes,
	// No connection tells a UDP receiver its sender died: it watches the
	// sender's process.
	WatchPeer: true,
	Skip: map[string]string{
		"SenderKilled":           udpLossy + " (the test checks that every message before the kill arrives)",
		"SenderKilledMidMessage": udpLossy + " (the test checks that every message before the kill arrives); a datagram is never torn",
		"Order100k":              udpLossy,
		"OrderToChild":           udpLossy,
		"ConcurrentGoroutines":   udpLossy,
		"ConcurrentProcesses":    udpLossy,
		"Select":                 udpLossy,
		"SelectSend":             udpLossy,
		"SelectSendCancelled":    udpNoBlock,
		"ChanInLoop":             udpLossy,
		"ChanMixed":              udpLossy,
		"CancelSend":             udpNoBlock,
		"TryRecvTrySend":         udpNoBlock,
		"CloseWhileBlocked/Send": udpNoBlock,
		"CloseWhileSending":      udpNoBlock,
		"ReceiverKilled":         udpLossy + " (the receiving child checks every message, so it stops early)",
	},
}

// No value ends a datagram stream, in either mode: empty values and values
// whose bytes are the end-of-stream marker's datagram arrive as values,
// exactly. In tagged mode the marker is a tag no value can carry (a send
// with it is refused); in raw mode there is no marker, and an empty raw
// seqpacket record — which a read returns as 0 bytes, like the peer's
// hang-up — is told apart by the sender's credentials (SO_PASSCRED).
func TestDatagramValuesNeverEndTheStream(t *testing.T) {
	networks := []struct {
		name string
		pair func(opts ...ipcchan.Option) (*ipcchan.Sender[[]byte], *ipcchan.Receiver[[]byte], error)
	}{
		{"unixgram", unixgramHarness.Pair},
		{"unixpacket", unixpacketHarness.Pair},
		{"udp", udpHarness.Pair},
	}
	values := [][]byte{nil, []byte("a"), nil, {0xFF, 0xFF, 0xFF, 0xFF}, {}, []byte("b"), nil}
	for _, nw := range networks {
		for _, raw := range []bool{false, true} {
			name := nw.name + "/tagged"
			var opts []ipcchan.Option
			if raw {
				name = nw.name + "/raw"
				opts = append(opts, ipcchan.WithForeignPeer())
			}
			t.Run(name, func(t *testing.T) {
				ipcchantest.CheckFDs(t)
				tx, rx, err := nw.pair(opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer rx.Close()
				defer tx.Close()
				ctx := testCtx(t)
				want := values
				switch err := tx.SendTag(ctx, 0xFFFF_FFFF, nil); {
				case raw:
				case nw.name == "unixpacket": // the kernel ends the stream: the tag is free
					if err != nil {
						t.Fatal(err)
					}
					want = append([][]byte{nil}, values...)
				case !errors.Is(err, endpoints.ErrReservedTag):
					t.Fatalf("a value with the marker's tag: %v, want ErrReservedTag", err)
				}
				for _, v := range values {
					if err := tx.Send(ctx, v); err != nil {
						t.Fatal(err)
					}
				}
				end := io.EOF
				if raw && nw.name != "unixpacket" {
					end = nil // no marker: a raw datagram receiver never ends by itself
				}
				if err := tx.Close(); err != nil {
					t.Fatal(err)
				}
				recvExactly(t, ctx, rx, want, end)
				if end == nil {
					if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
						t.Fatalf("after the values: %v, want ErrWouldBlock", err)
					}
				}
			})
		}
	}
}
