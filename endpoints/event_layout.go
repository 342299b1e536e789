package endpoints

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Event layout (PROTOCOL.md §14), EventSize bytes at an 8-byte aligned
// offset of a shared mapping, in native byte order. The constants sit on
// the first cache line, the words every notification touches on the
// second.
//
//	0    magic    [8]byte "IPCCEVNT"
//	8    version  uint32  1, stored last by the formatter
//	12   size     uint32  EventSize
//	16   reserved, zero
//	64   state    uint32  futex word: bit 0 the flag (set), bits 1..31 a
//	                      change counter, advanced by every Set, Notify
//	                      and Raise
//	68   waiters  uint32  1: a waiter may sleep on state (announced)
//	72   count    uint64  the counter Notify adds to
//	80   bits     uint64  the bit set Raise ORs into and Take empties
//	88   reserved, zero
//
// Any value of the four words is valid: a peer that scribbles over them
// causes a spurious wake-up, a missed one (mended by the waiters' bounded
// recheck, eventRecheck) or wrong values, never an out-of-bounds access.
const (
	eventMagic   = "IPCCEVNT"
	eventVersion = 1

	// EventSize is the room an event takes in a mapping (see
	// [FormatEvent]).
	EventSize = 128

	evOffVersion = 8
	evOffSize    = 12
	evOffState   = 64
	evOffWaiters = 68
	evOffCount   = 72
	evOffBits    = 80

	evSet  = 1 // state's flag bit
	evStep = 2 // state's change counter, one step
)

// eventMem is a validated view of an event's words.
type eventMem struct {
	state   *uint32
	waiters *uint32
	count   *uint64
	bits    *uint64
}

// formatEvent writes a clear event into mem (EventSize bytes): the version
// last, atomically, so that an opener that sees it sees the rest.
func formatEvent(mem []byte) {
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[evOffVersion])), 0)
	clear(mem[:EventSize])
	copy(mem, eventMagic)
	binary.NativeEndian.PutUint32(mem[evOffSize:], EventSize)
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[evOffVersion])), eventVersion)
}

// eventVersionOf returns the version word of the event at the start of
// mem (EventSize bytes), 0 while it is being formatted.
func eventVersionOf(mem []byte) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[evOffVersion])))
}

// openEventMem validates the event header at the start of mem (at least
// EventSize bytes, 8-byte aligned) and returns its words.
func openEventMem(mem []byte) (*eventMem, error) {
	if len(mem) < EventSize || uintptr(unsafe.Pointer(&mem[0]))%8 != 0 {
		return nil, fmt.Errorf("%w: %d bytes cannot hold an event (%d, 8-byte aligned)", ErrMappingSize, len(mem), EventSize)
	}
	if string(mem[:8]) != eventMagic {
		return nil, fmt.Errorf("%w: magic %q, want %q: not an event, or not formatted (FormatEvent)", ErrCorrupt, mem[:8], eventMagic)
	}
	if v := eventVersionOf(mem); v != eventVersion {
		return nil, fmt.Errorf("%w: event version %d, want %d", ErrCorrupt, v, eventVersion)
	}
	if s := binary.NativeEndian.Uint32(mem[evOffSize:]); s != EventSize {
		return nil, fmt.Errorf("%w: event size %d, want %d", ErrCorrupt, s, EventSize)
	}
	return &eventMem{
		state:   (*uint32)(unsafe.Pointer(&mem[evOffState])),
		waiters: (*uint32)(unsafe.Pointer(&mem[evOffWaiters])),
		count:   (*uint64)(unsafe.Pointer(&mem[evOffCount])),
		bits:    (*uint64)(unsafe.Pointer(&mem[evOffBits])),
	}, nil
}

// isEventFile reports whether fd is a shared memory object or file that
// starts with an event (its magic), as NewEvent and CreateEvent make.
func isEventFile(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size < EventSize {
		return false
	}
	var magic [8]byte
	n, err := unix.Pread(fd, magic[:], 0)
	return err == nil && n == len(magic) && string(magic[:]) == eventMagic
}
