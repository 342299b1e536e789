package endpoints

import (
	"context"
	"encoding/binary"
	"errors"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
)

// bcastReader opens a subscriber on the broadcast in mem, without a
// Mapping (the fuzz test's memory is the heap's).
func bcastReader(mem []byte, replay bool) (*bcastEnd, error) {
	b, err := openBroadcast(mem)
	if err != nil {
		return nil, err
	}
	e := &bcastEnd{b: b, core: newRecvCore("broadcast", 1<<20, 1)}
	e.re = ringEnd{r: &b.ring, pid: 1, wait: poller.NewBlocking(0, nil)}
	if b.lossy {
		e.buf = make([]byte, b.maxPayload+bcastSeq)
	}
	if err := e.join(replay); err != nil {
		return nil, err
	}
	return e, nil
}

// readBroadcast takes what a subscriber would from e's memory, as the
// receiver does, checking that every payload lies in the data area (or,
// lossy, in the subscriber's copy), and returns the first error other
// than "empty" and lost values.
func readBroadcast(t *testing.T, e *bcastEnd) error {
	data := uintptr(unsafe.Pointer(&e.b.ring.data[0]))
	for range 10000 {
		m, err := e.take(context.Background(), false)
		var lag *ipcchan.LaggedError
		switch {
		case err == unix.EAGAIN:
			return nil
		case errors.As(err, &lag):
			continue
		case err != nil:
			return err
		}
		if m.kind == msgSkip {
			return nil
		}
		p := m.body
		if len(p) > 0 {
			start := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
			inData := start >= data && start+uintptr(len(p)) <= data+uintptr(len(e.b.ring.data))
			inCopy := e.buf != nil && start >= uintptr(unsafe.Pointer(&e.buf[0])) && start+uintptr(len(p)) <= uintptr(unsafe.Pointer(&e.buf[0]))+uintptr(len(e.buf))
			if !inData && !inCopy {
				t.Fatalf("a payload outside the data area")
			}
		}
		e.advance(e.curEnd)
	}
	return nil
}

// bcastFuzzSize is the memory of the fuzzed broadcast: 2 slots and 1 KiB
// of data.
const bcastFuzzSize = bcastBase + 2*bcastSlotSize + 1024

// FuzzBroadcastReader feeds a subscriber arbitrary contents of the
// header, the slots and the records — what a buggy or hostile peer may
// write there — after it joined (what it validated at open stays cached;
// every word it reads again is fuzzed), and, for the header validation,
// before it opens. It must return values inside the data area or its own
// copy, or an error; never panic, read out of bounds or loop for ever.
func FuzzBroadcastReader(f *testing.F) {
	for _, lossy := range []bool{false, true} {
		mem := alignedMem(bcastFuzzSize)
		formatBroadcast(mem, 0, 2, lossy)
		f.Add(append([]byte(nil), mem...), lossy)
		// Two values and an end of stream, as a publisher writes them.
		w := alignedMem(bcastFuzzSize)
		formatBroadcast(w, 0, 2, lossy)
		data := w[bcastHeaderSize(2):]
		pos := 0
		for i, rec := range []struct {
			word uint32
			body string
		}{{13, "hello"}, {8 + 3, "abc"}, {recEOS | 8, ""}} {
			binary.NativeEndian.PutUint32(data[pos:], rec.word)
			binary.NativeEndian.PutUint32(data[pos+4:], 1)
			binary.NativeEndian.PutUint64(data[pos+8:], uint64(min(i, 2)))
			copy(data[pos+16:], rec.body)
			pos += int(recordSize(int(rec.word & recLen)))
		}
		binary.NativeEndian.PutUint64(w[offBHead:], uint64(pos))
		binary.NativeEndian.PutUint64(w[offBNextSeq:], 2)
		f.Add(w, lossy)
	}
	f.Add([]byte("IPCCBCST"), false)
	f.Fuzz(func(t *testing.T, contents []byte, lossy bool) {
		// After joining: the words it reads again are anything.
		mem := alignedMem(bcastFuzzSize)
		formatBroadcast(mem, 0, 2, lossy)
		e, err := bcastReader(mem, false)
		if err != nil {
			t.Fatalf("a fresh broadcast: %v", err)
		}
		copy(mem[bcastBase:], contents) // the header's constants stay as validated
		copy(mem[offBLock:bcastBase], contents)
		// Its own slot kept (one scribbled over is errRevoked at once),
		// so that the records are read.
		atomic.StoreUint64(e.ownerWord, e.owner)
		readBroadcast(t, e)
		// Before opening: the header itself is anything.
		mem = alignedMem(bcastFuzzSize)
		copy(mem, contents)
		clear(mem[offBLock : offBLock+4]) // a live holder would keep it from joining (joinLockWait)
		if e, err := bcastReader(mem, true); err == nil {
			readBroadcast(t, e)
		}
	})
}

// Damage to the header is a clear error wrapping ErrCorrupt or
// ErrMappingSize when a subscriber opens it.
func TestBroadcastRefusesCorruptHeader(t *testing.T) {
	fresh := func() []byte {
		mem := alignedMem(bcastFuzzSize)
		formatBroadcast(mem, 0, 2, false)
		return mem
	}
	put32 := func(off int, v uint32) func([]byte) []byte {
		return func(m []byte) []byte { binary.NativeEndian.PutUint32(m[off:], v); return m }
	}
	cases := []struct {
		name   string
		damage func(mem []byte) []byte
		want   error
	}{
		{"wrong magic", func(m []byte) []byte { copy(m, "IPCCRING"); return m }, ErrCorrupt},
		{"wrong version", put32(offVersion, 9), ErrCorrupt},
		{"no slots", put32(offBSlots, 0), ErrCorrupt},
		{"slots beyond the mapping", put32(offBSlots, 4096), ErrCorrupt},
		{"header size not the slots'", put32(offHeader, 256), ErrCorrupt},
		{"capacity not the mapping's", func(m []byte) []byte { binary.NativeEndian.PutUint64(m[offCapacity:], 4096); return m }, ErrCorrupt},
		{"value limit over the data area", put32(offMaxRecord, 1024), ErrCorrupt},
		{"mode", put32(offBMode, 7), ErrCorrupt},
		{"mapping too small", func(m []byte) []byte { return m[:bcastBase+8] }, ErrMappingSize},
	}
	for _, c := range cases {
		if _, err := openBroadcast(c.damage(fresh())); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := openBroadcast(fresh()); err != nil {
		t.Fatalf("a fresh broadcast: %v", err)
	}
}

// The fuzz test's seed with records is read as a publisher's: two values
// and the end of stream.
func TestBroadcastFuzzSeedReads(t *testing.T) {
	w := alignedMem(bcastFuzzSize)
	formatBroadcast(w, 0, 2, true)
	data := w[bcastHeaderSize(2):]
	binary.NativeEndian.PutUint32(data[0:], 13)
	binary.NativeEndian.PutUint64(data[8:], 0)
	copy(data[16:], "hello")
	binary.NativeEndian.PutUint32(data[24:], recEOS|8)
	binary.NativeEndian.PutUint32(data[28:], 1)
	binary.NativeEndian.PutUint64(data[32:], 1)
	binary.NativeEndian.PutUint64(w[offBHead:], 40)
	binary.NativeEndian.PutUint64(w[offBNextSeq:], 1)
	e, err := bcastReader(w, true)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.take(context.Background(), false)
	if err != nil || string(m.body) != "hello" {
		t.Fatalf("%q, %v; want hello", m.body, err)
	}
	e.advance(e.curEnd)
	if m, err = e.take(context.Background(), false); err != nil || m.kind != msgMarker {
		t.Fatalf("%+v, %v; want the end of stream", m, err)
	}
}
