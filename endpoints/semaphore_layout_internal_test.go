package endpoints

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// glibc's sem_t in its three layouts (sysdeps/nptl/internaltypes.h,
// struct new_sem): 5 tokens, 1 sleeping waiter, shared between processes.
// A 32-bit machine's differs in size and in where everything is, and a
// 64-bit big-endian machine's value (the futex word) is the second half of
// the 64-bit word.
func TestSemLayouts(t *testing.T) {
	for _, c := range []struct {
		name     string
		wordSize int
		order    binary.ByteOrder
		futexOff int
		want     []byte
	}{
		{"64-bit little-endian", 8, binary.LittleEndian, 0, []byte{
			5, 0, 0, 0, 1, 0, 0, 0, // data: value, waiters
			128, 0, 0, 0, 0, 0, 0, 0, // private FUTEX_SHARED, pad
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"64-bit big-endian", 8, binary.BigEndian, 4, []byte{
			0, 0, 0, 1, 0, 0, 0, 5, // data: waiters, value
			0, 0, 0, 128, 0, 0, 0, 0,
			0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		{"32-bit little-endian", 4, binary.LittleEndian, 0, []byte{
			11, 0, 0, 0, // value<<1 | SEM_NWAITERS_MASK
			128, 0, 0, 0, // private
			0, 0, 0, 0, // pad
			1, 0, 0, 0}}, // nwaiters
		{"32-bit big-endian", 4, binary.BigEndian, 0, []byte{
			0, 0, 0, 11, 0, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0, 1}},
	} {
		l := semLayoutFor(c.wordSize, c.order)
		b := make([]byte, 32)
		l.encode(b, 5, 1)
		if l.size != len(c.want) || !bytes.Equal(b[:l.size], c.want) || l.futexOff != c.futexOff {
			t.Errorf("%s: %d bytes % x, futex word at %d; want %d bytes % x, at %d", c.name, l.size, b[:l.size], l.futexOff, len(c.want), c.want, c.futexOff)
		}
		if v, w := l.decode(b); v != 5 || w != 1 {
			t.Errorf("%s: decoded %d tokens %d waiters, want 5 and 1", c.name, v, w)
		}
		// The futex word holds the value (shifted on 32-bit).
		word := c.order.Uint32(b[l.futexOff:])
		if l.wide && word != 5 || !l.wide && word>>1 != 5 {
			t.Errorf("%s: futex word %#x does not hold the value", c.name, word)
		}
	}
	if want := semLayoutFor(int(unsafe.Sizeof(uintptr(0))), nativeOrder()); semNative != want || runtime.GOARCH == "386" && semNative.size != 16 || runtime.GOARCH == "amd64" && semNative.size != 32 {
		t.Errorf("%s: native sem_t %+v", runtime.GOARCH, semNative)
	}
}

// The semaphore's operations on memory keep glibc's layout for this
// machine: after InitSemaphore, Release and TryAcquire the bytes are what
// sem_init and sem_post would leave, and a sleeping Acquire counts itself
// among the waiters where sem_post looks for them (on 32-bit: the bit in
// the value word, which sem_post must see to wake anyone).
func TestSemaphoreMemoryLayout(t *testing.T) {
	m, err := NewMemfd(ObjectName("semlayout"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := InitSemaphore(m, 64, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 32)
	mem := func() []byte { return m.Bytes()[64 : 64+semNative.size] }
	semNative.encode(want, 3, 0)
	if !bytes.Equal(mem(), want[:semNative.size]) {
		t.Fatalf("after sem_init(3): % x, want % x", mem(), want[:semNative.size])
	}
	s.Release(2)
	if !s.TryAcquire(5) || s.Value() != 0 {
		t.Fatalf("after Release(2): TryAcquire(5) failed or value %d", s.Value())
	}
	semNative.encode(want, 0, 0)
	if !bytes.Equal(mem(), want[:semNative.size]) {
		t.Fatalf("after taking every token: % x, want % x", mem(), want[:semNative.size])
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Acquire(ctx, 1) }()
	// Wait until the Acquire sleeps as glibc's sem_wait would: counted,
	// and on 32-bit with the waiters bit set.
	for {
		_, waiters := semNative.decode(mem())
		sleeping := waiters == 1
		if !semNative.wide {
			sleeping = sleeping && binary.NativeEndian.Uint32(mem())&semNWaitersBit != 0
		}
		if sleeping {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Acquire on an empty semaphore returned %v", err)
		case <-ctx.Done():
			t.Fatalf("the waiting Acquire never showed in the sem_t: % x", mem())
		case <-time.After(time.Millisecond):
		}
	}
	s.Release(1)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	semNative.encode(want, 0, 0)
	if !bytes.Equal(mem(), want[:semNative.size]) {
		t.Fatalf("after the waiter took the token and left: % x, want % x", mem(), want[:semNative.size])
	}
}
