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

func TestReadv2(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	for _, tt := range []struct {
		in   string
		a, b int // sizes of the two buffers
		want [2]string
	}{
		{"headbody", 4, 16, [2]string{"head", "body"}},
		{"head", 4, 0, [2]string{"head", ""}},
		{"he", 4, 4, [2]string{"he", ""}},
		{"headbodytail", 4, 4, [2]string{"head", "body"}}, // "tail" stays in the pipe
	} {
		unix.Write(p[1], []byte(tt.in))
		a, b := make([]byte, tt.a), make([]byte, tt.b)
		n, err := Readv2(p[0], a, b)
		want := len(tt.want[0]) + len(tt.want[1])
		if err != nil || n != want || string(a[:min(n, len(a))]) != tt.want[0] || string(b[:n-min(n, len(a))]) != tt.want[1] {
			t.Fatalf("Readv2 of %q into %d+%d bytes = %d, %v: %q %q", tt.in, tt.a, tt.b, n, err, a, b)
		}
		// Empty the pipe for the next case.
		for n < len(tt.in) {
			m, _ := unix.Read(p[0], make([]byte, len(tt.in)-n))
			n += m
		}
	}
	if raceEnabled {
		return // the race detector adds allocations of its own
	}
	a, b := make([]byte, 1), make([]byte, 1)
	if allocs := testing.AllocsPerRun(100, func() {
		unix.Write(p[1], []byte("ab"))
		Readv2(p[0], a, b)
	}); allocs != 0 {
		t.Fatalf("Readv2 allocates %v times", allocs)
	}
}
