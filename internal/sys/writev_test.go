//go:build linux

package sys

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestWritev2(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	for _, tt := range []struct{ a, b string }{{"head", "body"}, {"", "body"}, {"head", ""}, {"", ""}} {
		n, err := Writev2(p[1], []byte(tt.a), []byte(tt.b))
		if err != nil || n != len(tt.a)+len(tt.b) {
			t.Fatalf("Writev2(%q, %q) = %d, %v", tt.a, tt.b, n, err)
		}
		if n == 0 {
			continue
		}
		buf := make([]byte, 16)
		m, _ := unix.Read(p[0], buf)
		if string(buf[:m]) != tt.a+tt.b {
			t.Fatalf("read %q", buf[:m])
		}
	}
	if raceEnabled {
		return // the race detector adds allocations of its own
	}
	if allocs := testing.AllocsPerRun(100, func() {
		Writev2(p[1], []byte("a"), []byte("b"))
		var buf [2]byte
		unix.Read(p[0], buf[:])
	}); allocs != 0 {
		t.Fatalf("Writev2 allocates %v times", allocs)
	}
	if _, err := Writev2(-1, []byte("x"), nil); err != unix.EBADF {
		t.Fatalf("Writev2 on a bad descriptor = %v", err)
	}
}
