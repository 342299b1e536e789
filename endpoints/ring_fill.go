package endpoints

import (
	"encoding/binary"
	"fmt"
)

// RingHeaderSize is how many bytes at the start of a ring's object
// [RingFill] reads.
const RingHeaderSize = ringHeader

// RingFill reports how full the ring is whose object (shared memory or a
// file) is size bytes long and starts with header, the object's first
// RingHeaderSize bytes as read without mapping it (pread, or copied out of
// a SysV segment): the bytes of records not yet received, and the size of
// the data area. isRing is false, with a nil error, if header does not
// start with a ring's magic. It trusts nothing in header: one that does
// not describe a ring of size bytes, or head and tail out of range, is an
// error wrapping ErrCorrupt. The numbers are a snapshot of a ring that
// may be in use. Safe for concurrent use.
func RingFill(header []byte, size int64) (used, capacity uint64, isRing bool, err error) {
	if len(header) < ringHeader || string(header[:len(ringMagic)]) != ringMagic {
		return 0, 0, false, nil
	}
	if size < ringHeader || size > 1<<62 {
		return 0, 0, true, fmt.Errorf("%w: a ring header in a %d-byte object", ErrCorrupt, size)
	}
	if v := binary.NativeEndian.Uint32(header[offVersion:]); v != ringVersion {
		return 0, 0, true, fmt.Errorf("%w: ring version %d, want %d", ErrCorrupt, v, ringVersion)
	}
	if h := binary.NativeEndian.Uint32(header[offHeader:]); h != ringHeader {
		return 0, 0, true, fmt.Errorf("%w: ring header size %d, want %d", ErrCorrupt, h, ringHeader)
	}
	c := binary.NativeEndian.Uint64(header[offCapacity:])
	if c == 0 || c != ringCapacity(int(size)) {
		return 0, 0, true, fmt.Errorf("%w: ring capacity %d does not match a %d-byte object", ErrCorrupt, c, size)
	}
	r := ringMem{capacity: c}
	used, err = r.span(binary.NativeEndian.Uint64(header[offHead:]), binary.NativeEndian.Uint64(header[offTail:]))
	if err != nil {
		return 0, 0, true, err
	}
	return used, c, true, nil
}
