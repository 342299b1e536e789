package endpoints

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"
)

// Ring layout, in the shared mapping (native byte order: both ends are on
// one machine). The header takes the first ringHeader bytes; the words one
// side writes and the other reads sit on cache lines of their own.
//
//	0    magic     [8]byte "IPCCRING"
//	8    version   uint32  1
//	12   header    uint32  ringHeader
//	16   capacity  uint64  bytes of the data area, a power of two
//	24   maxRecord uint32  largest payload
//	32   lock      uint32  0, or the pid of the writer process holding it
//	64   head      uint64  bytes ever committed by writers
//	128  tail      uint64  bytes ever consumed by the reader
//	192  rwait     uint32  futex word: the reader waits for records
//	196  wwait     uint32  futex word: writers wait for room or the lock
//	200  bells     uint32  1: the ends have eventfd doorbells (ring_bell.go)
//	256  data      [capacity]byte
//
// The futex words share a line that is written only when a side parks, so
// that checking them on every message costs no cache-line transfer; the
// lock sits with the constants, which nobody reads per message, so that a
// reader polling head does not fight the writer for its line.
//
// A record starts at an 8-byte boundary of the data area: a uint32 whose
// low 30 bits are the payload length and whose top bits flag a pad (skip to
// the end of the data area) or an end-of-stream marker, a uint32 tag, then
// the payload, padded to 8 bytes. Writers copy a record in, then advance
// head: a reader never sees a record before it is whole, so a writer that
// dies mid-record leaves nothing torn behind. The reader validates every
// value it reads from the mapping before use.
const (
	ringMagic   = "IPCCRING"
	ringVersion = 1
	ringHeader  = 256

	offVersion   = 8
	offHeader    = 12
	offCapacity  = 16
	offMaxRecord = 24
	offLock      = 32
	offHead      = 64
	offTail      = 128
	offRWait     = 192
	offWWait     = 196
	offBells     = 200

	recHeader = 8
	recPad    = 1 << 31
	recEOS    = 1 << 30
	recLen    = recEOS - 1
)

// ringMem is a validated view of a ring's mapping.
type ringMem struct {
	mem       []byte
	data      []byte
	mask      uint64
	capacity  uint64
	maxRecord int
	head      *uint64
	tail      *uint64
	lock      *uint32
	wwait     *uint32
	rwait     *uint32
	bells     *uint32
}

// ringCapacity returns the largest power-of-two data area that fits in a
// mapping of size bytes, or 0.
func ringCapacity(size int) uint64 {
	if size < ringHeader+64 {
		return 0
	}
	return 1 << (bits.Len64(uint64(size-ringHeader)) - 1)
}

// formatRing writes an empty ring's header into mem.
func formatRing(mem []byte, maxRecord int) (uint64, error) {
	c := ringCapacity(len(mem))
	if c == 0 {
		return 0, fmt.Errorf("%w: %d bytes cannot hold a ring (at least %d)", ErrMappingSize, len(mem), ringHeader+64)
	}
	limit := int(min(c/2-recHeader, recLen))
	if maxRecord <= 0 || maxRecord > limit {
		maxRecord = limit
	}
	clear(mem[:ringHeader])
	copy(mem, ringMagic)
	binary.NativeEndian.PutUint32(mem[offHeader:], ringHeader)
	binary.NativeEndian.PutUint64(mem[offCapacity:], c)
	binary.NativeEndian.PutUint32(mem[offMaxRecord:], uint32(maxRecord))
	// The version goes last and atomically: an opener that sees it sees
	// the rest.
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[offVersion])), ringVersion)
	return c, nil
}

// openRing validates mem's header and returns the view.
func openRing(mem []byte) (*ringMem, error) {
	if len(mem) < ringHeader+64 || uintptr(unsafe.Pointer(&mem[0]))%64 != 0 {
		return nil, fmt.Errorf("%w: %d bytes cannot hold a ring", ErrMappingSize, len(mem))
	}
	if string(mem[:8]) != ringMagic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrCorrupt, mem[:8], ringMagic)
	}
	if v := atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[offVersion]))); v != ringVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrCorrupt, v, ringVersion)
	}
	if h := binary.NativeEndian.Uint32(mem[offHeader:]); h != ringHeader {
		return nil, fmt.Errorf("%w: header size %d, want %d", ErrCorrupt, h, ringHeader)
	}
	c := binary.NativeEndian.Uint64(mem[offCapacity:])
	if c != ringCapacity(len(mem)) {
		return nil, fmt.Errorf("%w: capacity %d does not match a %d-byte mapping", ErrCorrupt, c, len(mem))
	}
	maxRecord := int(binary.NativeEndian.Uint32(mem[offMaxRecord:]))
	if maxRecord <= 0 || uint64(maxRecord) > c/2-recHeader {
		return nil, fmt.Errorf("%w: largest record %d in a %d-byte ring", ErrCorrupt, maxRecord, c)
	}
	r := &ringMem{
		mem: mem, data: mem[ringHeader : ringHeader+int(c)], mask: c - 1, capacity: c, maxRecord: maxRecord,
		head:  (*uint64)(unsafe.Pointer(&mem[offHead])),
		tail:  (*uint64)(unsafe.Pointer(&mem[offTail])),
		lock:  (*uint32)(unsafe.Pointer(&mem[offLock])),
		wwait: (*uint32)(unsafe.Pointer(&mem[offWWait])),
		rwait: (*uint32)(unsafe.Pointer(&mem[offRWait])),
		bells: (*uint32)(unsafe.Pointer(&mem[offBells])),
	}
	return r, nil
}

// recordSize is the room a payload of n bytes takes, header and padding
// included.
func recordSize(n int) uint64 { return uint64(recHeader+n+7) &^ 7 }

// span checks head and tail as read from the mapping: 0 <= head-tail <=
// capacity, and both 8-byte aligned.
func (r *ringMem) span(head, tail uint64) (uint64, error) {
	used := head - tail
	if used > r.capacity || head%8 != 0 || tail%8 != 0 {
		return 0, fmt.Errorf("%w: head %d, tail %d in a %d-byte ring", ErrCorrupt, head, tail, r.capacity)
	}
	return used, nil
}

// word returns the uint32 at data offset i (8-byte aligned, in range).
func (r *ringMem) word(i uint64) *uint32 { return (*uint32)(unsafe.Pointer(&r.data[i])) }

// record reads the record at tail, which has used bytes committed after
// it: its flags, tag, payload and size. A pad record yields recPad.
func (r *ringMem) record(tail, used uint64) (flags uint32, tag uint32, payload []byte, size uint64, err error) {
	i := tail & r.mask
	w := atomic.LoadUint32(r.word(i))
	if w&recPad != 0 {
		size = r.capacity - i
		if size > used {
			return 0, 0, nil, 0, fmt.Errorf("%w: a pad of %d bytes with %d committed", ErrCorrupt, size, used)
		}
		return recPad, 0, nil, size, nil
	}
	n := int(w & recLen)
	size = recordSize(n)
	if n > r.maxRecord || size > used || i+size > r.capacity {
		return 0, 0, nil, 0, fmt.Errorf("%w: a %d-byte record at %d with %d committed", ErrCorrupt, n, i, used)
	}
	tag = binary.NativeEndian.Uint32(r.data[i+4:])
	return w &^ recLen, tag, r.data[i+recHeader : i+recHeader+uint64(n)], size, nil
}
