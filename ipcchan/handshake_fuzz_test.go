package ipcchan

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzHandshake feeds arbitrary peer hellos to checkHello: it never
// panics, refuses with ErrHandshake, and accepts only a hello equal to
// ours.
func FuzzHandshake(f *testing.F) {
	ours := helloFor[struct{ A, B int64 }]("binary-le")
	f.Add(ours)
	f.Add(helloFor[string]("string"))
	f.Add(ours[:11])
	f.Add([]byte(handshakeMagic))
	f.Add(append(bytes.Clone(ours[:10]), 0xff))
	f.Fuzz(func(t *testing.T, peer []byte) {
		err := checkHello(peer, ours)
		if err != nil && !errors.Is(err, ErrHandshake) {
			t.Fatalf("error %v does not wrap ErrHandshake", err)
		}
		if (err == nil) != bytes.Equal(peer, ours) {
			t.Fatalf("checkHello(%x) = %v", peer, err)
		}
	})
}
