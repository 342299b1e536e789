package endpoints_test

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// RingFill reads a real ring's header as its ends left it: the bytes sent
// and not yet received, and the data area's size.
func TestRingFillOfARealRing(t *testing.T) {
	m, err := endpoints.NewMemfd("ringfill", 256+4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := endpoints.FormatRing(m); err != nil {
		t.Fatal(err)
	}
	fill := func() (uint64, uint64) {
		t.Helper()
		used, c, isRing, err := endpoints.RingFill(m.Bytes()[:endpoints.RingHeaderSize], int64(m.Len()))
		if err != nil || !isRing {
			t.Fatalf("RingFill: %v (a ring: %v)", err, isRing)
		}
		return used, c
	}
	if used, c := fill(); used != 0 || c != 4096 {
		t.Fatalf("an empty ring: %d/%d", used, c)
	}
	ctx := context.Background()
	tx, err := endpoints.RingSender[[]byte](m, ipcchan.WithHandshake(false))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	rx, err := endpoints.RingReceiver[[]byte](m, ipcchan.WithHandshake(false))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	for range 3 {
		if err := tx.Send(ctx, make([]byte, 20)); err != nil { // a record of 8+20 bytes, padded to 32
			t.Fatal(err)
		}
	}
	if used, _ := fill(); used != 3*32 {
		t.Fatalf("three 20-byte messages take %d bytes, want 96", used)
	}
	if _, err := rx.Recv(ctx); err != nil {
		t.Fatal(err)
	}
	if used, _ := fill(); used != 2*32 {
		t.Fatalf("after one is received: %d bytes, want 64", used)
	}
}

// Whatever the header holds, RingFill neither panics nor reports more
// used than the data area, nor a data area the object cannot hold.
func FuzzRingFill(f *testing.F) {
	valid := make([]byte, 256)
	copy(valid, "IPCCRING")
	binary.NativeEndian.PutUint32(valid[8:], 1)
	binary.NativeEndian.PutUint32(valid[12:], 256)
	binary.NativeEndian.PutUint64(valid[16:], 4096)
	binary.NativeEndian.PutUint64(valid[64:], 80)
	binary.NativeEndian.PutUint64(valid[128:], 16)
	f.Add(valid, int64(256+4096))
	f.Add(valid, int64(100))
	f.Add(valid, int64(-1))
	f.Add(valid[:8], int64(256+4096))
	f.Fuzz(func(t *testing.T, header []byte, size int64) {
		used, c, isRing, err := endpoints.RingFill(header, size)
		switch {
		case err != nil && (!isRing || !errors.Is(err, endpoints.ErrCorrupt)):
			t.Fatalf("error %v (a ring: %v), want one wrapping ErrCorrupt for a ring", err, isRing)
		case err == nil && isRing && (used > c || c == 0 || c > uint64(size-256) || c&(c-1) != 0):
			t.Fatalf("%d used of %d in a %d-byte object", used, c, size)
		}
	})
}
