package endpoints

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/ipcchan/go/ipcchan/transport"
)

// Broadcast layout (PROTOCOL.md §13), in the shared mapping, native byte
// order. It is the ring's (ring_layout.go) with a subscriber slot array
// between the header and the data area, and a sequence number in front of
// every record's payload:
//
//	0    magic     [8]byte "IPCCBCST"
//	8    version   uint32  1, stored last
//	12   header    uint32  bcastBase + 64*slots: where the data area starts
//	16   capacity  uint64  bytes of the data area, a power of two
//	24   maxRecord uint32  largest payload (the value, without the sequence)
//	28   mode      uint32  0 lossless, 1 lossy
//	32   slots     uint32  subscriber slots, 1..4096
//	36   lock      uint32  0, or the pid of the publisher process holding it
//	40   gen       uint32  joins ever made (for slot owner words)
//	44   replays   uint32  replaying joins ever made (publishers drop their cached slowest tail)
//	48   stolen    uint32  1: a dead holder's lock was taken back; the next holder recounts nextSeq
//	64   head      uint64  bytes ever committed by publishers
//	72   nextSeq   uint64  the sequence number of the next value
//	80   closed    uint32  end-of-stream records ever committed
//	128  oldest    uint64  position of the oldest record still held
//	192  swait     uint32  futex word: subscribers wait for records
//	196  pwait     uint32  futex word: publishers wait for room or the lock
//	200  need      uint64  the position a publisher waiting for room waits for every tail to reach
//	256  slots     [slots] of 64 bytes:
//	     0  owner uint64  0 free, else gen<<32 | pid of the subscriber
//	     8  tail  uint64  bytes consumed by that subscriber
//	     16 lost  uint64  values it lost (lossy mode)
//	     24 seq   uint64  the sequence number at tail, while handed over
//	     32 moved uint64  0, or when (CLOCK_MONOTONIC ns) the owner handed
//	                      the slot to a child process, which takes it over
//	header data     [capacity]byte
//
// A record is the ring's, whose payload starts with the 8-byte sequence
// number of the value (end-of-stream records carry the number of the next
// value, and in their tag how many end-of-stream records precede them,
// themselves included).
const (
	bcastMagic    = "IPCCBCST"
	bcastVersion  = 1
	bcastBase     = 256
	bcastSlotSize = 64
	bcastSeq      = 8 // the sequence number in front of a payload

	offBMode    = 28
	offBSlots   = 32
	offBLock    = 36
	offBGen     = 40
	offBReplays = 44
	offBStolen  = 48
	offBHead    = 64
	offBNextSeq = 72
	offBClosed  = 80
	offBOldest  = 128
	offBSWait   = 192
	offBPWait   = 196
	offBNeed    = 200

	slotOwner = 0
	slotTail  = 8
	slotLost  = 16
	slotSeq   = 24
	slotMoved = 32
)

// bcastMem is a validated view of a broadcast's mapping. ring is the data
// area seen as a ring (records, head, lock, futex words) so that the
// ring's record and span checks, lock and waits serve it unchanged; its
// tail is nil: every subscriber has its own, in its slot.
type bcastMem struct {
	ring       ringMem
	lossy      bool
	slots      int
	slotMem    []byte
	maxPayload int
	nextSeq    *uint64
	closed     *uint32
	oldest     *uint64
	gen        *uint32
	replays    *uint32
	need       *uint64
	stolen     *uint32
}

// bcastHeaderSize is the bytes in front of the data area for n slots.
func bcastHeaderSize(slots int) int { return bcastBase + bcastSlotSize*slots }

// bcastCapacity returns the largest power-of-two data area that fits in a
// mapping of size bytes after a header of header bytes, or 0.
func bcastCapacity(size, header int) uint64 {
	if size < header+64 {
		return 0
	}
	return 1 << (bits.Len64(uint64(size-header)) - 1)
}

// formatBroadcast writes an empty broadcast's header into mem.
func formatBroadcast(mem []byte, maxPayload, slots int, lossy bool) error {
	header := bcastHeaderSize(slots)
	c := bcastCapacity(len(mem), header)
	if c == 0 {
		return fmt.Errorf("%w: %d bytes cannot hold a broadcast with %d subscriber slots (at least %d; fewer slots with ipcchan.WithSubscribers, or a larger mapping)",
			ErrMappingSize, len(mem), slots, header+64)
	}
	limit := int(min(c/2-recHeader-bcastSeq, recLen-bcastSeq))
	if maxPayload <= 0 || maxPayload > limit {
		maxPayload = limit
	}
	clear(mem[:header])
	copy(mem, bcastMagic)
	binary.NativeEndian.PutUint32(mem[offHeader:], uint32(header))
	binary.NativeEndian.PutUint64(mem[offCapacity:], c)
	binary.NativeEndian.PutUint32(mem[offMaxRecord:], uint32(maxPayload))
	if lossy {
		binary.NativeEndian.PutUint32(mem[offBMode:], 1)
	}
	binary.NativeEndian.PutUint32(mem[offBSlots:], uint32(slots))
	// The version goes last and atomically: an opener that sees it sees
	// the rest.
	atomic.StoreUint32((*uint32)(unsafe.Pointer(&mem[offVersion])), bcastVersion)
	return nil
}

// openBroadcast validates mem's header and returns the view. Nothing in
// the header is trusted: every field is checked against the mapping's
// size before it sizes anything.
func openBroadcast(mem []byte) (*bcastMem, error) {
	if len(mem) < bcastHeaderSize(1)+64 || uintptr(unsafe.Pointer(&mem[0]))%64 != 0 {
		return nil, fmt.Errorf("%w: %d bytes cannot hold a broadcast", ErrMappingSize, len(mem))
	}
	if string(mem[:8]) != bcastMagic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrCorrupt, mem[:8], bcastMagic)
	}
	if v := atomic.LoadUint32((*uint32)(unsafe.Pointer(&mem[offVersion]))); v != bcastVersion {
		return nil, fmt.Errorf("%w: broadcast version %d, want %d", ErrCorrupt, v, bcastVersion)
	}
	slots := binary.NativeEndian.Uint32(mem[offBSlots:])
	if slots < 1 || slots > transport.MaxSubscribers {
		return nil, fmt.Errorf("%w: %d subscriber slots", ErrCorrupt, slots)
	}
	header := bcastHeaderSize(int(slots))
	if h := binary.NativeEndian.Uint32(mem[offHeader:]); h != uint32(header) {
		return nil, fmt.Errorf("%w: header size %d, want %d for %d slots", ErrCorrupt, h, header, slots)
	}
	c := binary.NativeEndian.Uint64(mem[offCapacity:])
	if c == 0 || c != bcastCapacity(len(mem), header) {
		return nil, fmt.Errorf("%w: capacity %d in a %d-byte mapping with a %d-byte header", ErrCorrupt, c, len(mem), header)
	}
	maxPayload := int(binary.NativeEndian.Uint32(mem[offMaxRecord:]))
	if maxPayload <= 0 || uint64(maxPayload) > c/2-recHeader-bcastSeq {
		return nil, fmt.Errorf("%w: largest value %d in a %d-byte broadcast", ErrCorrupt, maxPayload, c)
	}
	mode := binary.NativeEndian.Uint32(mem[offBMode:])
	if mode > 1 {
		return nil, fmt.Errorf("%w: mode %d", ErrCorrupt, mode)
	}
	b := &bcastMem{
		ring: ringMem{
			mem: mem, data: mem[header : header+int(c)], mask: c - 1, capacity: c,
			maxRecord: maxPayload + bcastSeq,
			head:      (*uint64)(unsafe.Pointer(&mem[offBHead])),
			lock:      (*uint32)(unsafe.Pointer(&mem[offBLock])),
			rwait:     (*uint32)(unsafe.Pointer(&mem[offBSWait])),
			wwait:     (*uint32)(unsafe.Pointer(&mem[offBPWait])),
			bells:     new(uint32), // a broadcast has no doorbells
		},
		lossy:      mode == 1,
		slots:      int(slots),
		slotMem:    mem[bcastBase:header],
		maxPayload: maxPayload,
		nextSeq:    (*uint64)(unsafe.Pointer(&mem[offBNextSeq])),
		closed:     (*uint32)(unsafe.Pointer(&mem[offBClosed])),
		oldest:     (*uint64)(unsafe.Pointer(&mem[offBOldest])),
		gen:        (*uint32)(unsafe.Pointer(&mem[offBGen])),
		replays:    (*uint32)(unsafe.Pointer(&mem[offBReplays])),
		need:       (*uint64)(unsafe.Pointer(&mem[offBNeed])),
		stolen:     (*uint32)(unsafe.Pointer(&mem[offBStolen])),
	}
	return b, nil
}

// owner, tail and lost are the words of slot i (0 ≤ i < b.slots).
func (b *bcastMem) owner(i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&b.slotMem[i*bcastSlotSize+slotOwner]))
}

func (b *bcastMem) tail(i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&b.slotMem[i*bcastSlotSize+slotTail]))
}

func (b *bcastMem) lost(i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&b.slotMem[i*bcastSlotSize+slotLost]))
}

func (b *bcastMem) seq(i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&b.slotMem[i*bcastSlotSize+slotSeq]))
}

func (b *bcastMem) moved(i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&b.slotMem[i*bcastSlotSize+slotMoved]))
}

// validTail reports whether t, a position read from the mapping, may be a
// subscriber's: 8-byte aligned, not past head, at most the data area
// behind it.
func (b *bcastMem) validTail(t, head uint64) bool {
	return t%8 == 0 && t <= head && head-t <= b.ring.capacity
}

// seqAt reads the sequence number of the record whose payload is p (a
// record of the broadcast starts its payload with it).
func seqAt(p []byte) uint64 { return binary.NativeEndian.Uint64(p) }

// isBroadcastFile reports whether fd is a shared memory object or file
// that holds a broadcast (its first bytes are the broadcast magic).
func isBroadcastFile(fd int) bool { return hasMagic(fd, bcastMagic, int64(bcastHeaderSize(1)+64)) }
