package endpoints

import (
	"testing"
	"unsafe"
)

// The ring's 64-bit words, which both sides load and store atomically,
// sit at multiples of 8 from a 64-byte aligned start: sync/atomic's 64-bit
// operations fault on 32-bit machines otherwise. The 32-bit words (lock,
// futexes, record words) sit at multiples of 4.
func TestRingAtomicAlignment(t *testing.T) {
	for name, off := range map[string]int{"head": offHead, "tail": offTail, "capacity": offCapacity} {
		if off%8 != 0 {
			t.Errorf("%s at offset %d: not 8-byte aligned", name, off)
		}
	}
	for name, off := range map[string]int{"version": offVersion, "lock": offLock, "rwait": offRWait, "wwait": offWWait} {
		if off%4 != 0 {
			t.Errorf("%s at offset %d: not 4-byte aligned", name, off)
		}
	}
	if ringHeader%8 != 0 || recordSize(1)%8 != 0 {
		t.Errorf("the data area (at %d) or a record (%d bytes) breaks 8-byte alignment", ringHeader, recordSize(1))
	}
	m, err := NewMemfd(ObjectName("ringalign"), 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := FormatRing(m); err != nil {
		t.Fatal(err)
	}
	rm, err := openRing(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]unsafe.Pointer{"head": unsafe.Pointer(rm.head), "tail": unsafe.Pointer(rm.tail)} {
		if uintptr(p)%8 != 0 {
			t.Errorf("%s at address %#x: not 8-byte aligned", name, p)
		}
	}
}
