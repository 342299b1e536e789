package endpoints

import (
	"testing"
	"unsafe"
)

// pageCut cuts a large payload so that every write of whole pages starts
// on a page boundary in memory: the header goes with the bytes up to the
// first boundary (alone if the payload starts on one), then whole pages,
// then the rest; a write cut short by a full pipe picks up at the next
// boundary. Writes of the pieces cover the payload exactly.
func TestPageCut(t *testing.T) {
	backing := make([]byte, 10*pageSize)
	base := int(uintptr(unsafe.Pointer(&backing[0]))) & (pageSize - 1)
	for _, off := range []int{0, 1, 8, pageSize - 8, pageSize - 1, pageSize + 100} {
		for _, n := range []int{alignMin, 5*pageSize + 3, 6 * pageSize} {
			start := (pageSize-base)%pageSize + off // off bytes past a page boundary
			p := backing[start : start+n]
			for _, most := range []int{n, 1000} { // what one write takes at most
				pos, hdr, writes := 0, true, 0
				for pos < n {
					piece := pageCut(p[pos:], hdr)
					addr := int(uintptr(unsafe.Pointer(&p[pos]))) & (pageSize - 1)
					end := (addr + len(piece)) & (pageSize - 1)
					switch {
					case len(piece) >= pageSize && (addr != 0 || len(piece)%pageSize != 0):
						t.Fatalf("off %d, %d bytes: %d bytes from %d into a page: whole pages must start on a boundary", off, n, len(piece), addr)
					case len(piece) == 0 && !hdr:
						t.Fatalf("off %d, %d bytes: an empty piece without the header", off, n)
					case len(piece) < len(p[pos:]) && end != 0:
						t.Fatalf("off %d, %d bytes: a piece from %d ends at %d into a page, not at a boundary", off, n, addr, end)
					}
					pos += min(len(piece), most)
					hdr = false
					writes++
				}
				if most == n && writes > 3 {
					t.Errorf("off %d, %d bytes: %d writes, want at most 3", off, n, writes)
				}
			}
		}
	}
}
