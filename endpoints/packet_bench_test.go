package endpoints_test

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkDatagramSendRecv measures Send then Recv of one datagram within
// one process, on an abstract and a path-named unixgram socket and on UDP,
// to show the per-message cost and allocations of the datagram receiver.
func BenchmarkDatagramSendRecv(b *testing.B) {
	addrs := []struct{ name, network, addr string }{
		{"unixgram-abstract", "unixgram", ""},
		{"unixgram-path", "unixgram", "path"},
		{"udp", "udp", "127.0.0.1:0"},
	}
	for _, a := range addrs {
		for _, size := range []int{64, 4096} {
			b.Run(a.name+"/"+sizeName(size), func(b *testing.B) {
				addr := a.addr
				switch addr {
				case "":
					addr = abstractName("bench")
				case "path":
					addr = filepath.Join(b.TempDir(), "s")
				}
				tx, rx, err := packetPair(a.network, addr)
				if err != nil {
					b.Fatal(err)
				}
				defer rx.Close()
				defer tx.Close()
				ctx := context.Background()
				msg := make([]byte, size)
				var buf []byte
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for range b.N {
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
}
