package endpoints_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

type cvInner struct {
	A int8
	B float64
}

// cvShared is struct shared of cviewC: a char[8], padding after a bool,
// before a uint64 and a nested struct, and four bytes Go leaves blank that
// the C program uses.
type cvShared struct {
	Flag  bool
	Count int32
	Name  string `c:"char[8]"`
	Seq   uint64
	Tag   int8
	Vals  [3]int16
	In    cvInner
	_     [4]uint8
	Last  uint16
}

const cviewC = `
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct inner { int8_t a; double b; };
struct shared {
	bool flag; int32_t count; char name[8]; uint64_t seq; int8_t tag; int16_t vals[3];
	struct inner in; uint8_t reserved[4]; uint16_t last;
};

/* LAYOUT prints sizeof and _Alignof, then offsetof and sizeof of each field
   the test names. */
#define F(f) printf(#f " %zu %zu\n", offsetof(struct shared, f), sizeof(((struct shared *)0)->f))

int main(int argc, char **argv) {
	if (argc == 2 && strcmp(argv[1], "layout") == 0) {
		printf("sizeof %zu %zu\n", sizeof(struct shared), _Alignof(struct shared));
		F(flag); F(count); F(name); F(seq); F(tag); F(vals); F(in.a); F(in.b); F(last);
		return 0;
	}
	if (argc != 4 || strcmp(argv[1], "swap") != 0) {
		fprintf(stderr, "usage: cview layout | cview swap SHM-NAME OFFSET\n");
		return 2;
	}
	/* swap: print the struct Go stored, then store C's own values. */
	int fd = shm_open(argv[2], O_RDWR, 0);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) { perror(argv[2]); return 1; }
	char *base = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (base == MAP_FAILED) { perror("mmap"); return 1; }
	struct shared *s = (struct shared *)(base + atoi(argv[3]));
	printf("%d|%d|%.8s|%llu|%d|%d,%d,%d|%d|%g|%d,%d,%d,%d|%u\n", s->flag, s->count, s->name,
		(unsigned long long)s->seq, s->tag, s->vals[0], s->vals[1], s->vals[2], s->in.a, s->in.b,
		s->reserved[0], s->reserved[1], s->reserved[2], s->reserved[3], s->last);
	s->flag = false; s->count = 123456;
	memcpy(s->name, "12345678", 8); /* all 8 bytes, no NUL, as strncpy leaves it */
	s->seq = 99; s->tag = -128; s->vals[0] = -1; s->vals[1] = 0; s->vals[2] = 32767;
	s->in.a = -9; s->in.b = -0.125; memset(s->reserved, 0xab, 4); s->last = 7;
	return 0;
}
`

var cvGo = cvShared{Flag: true, Count: -42, Name: "from-go", Seq: 1<<40 + 7, Tag: -3,
	Vals: [3]int16{1, -2, 3}, In: cvInner{A: 9, B: 2.5}, Last: 65000}

// A C program maps the same POSIX shared memory and sees the struct Go
// stored through a CView field for field, its char[8] and its padding
// where gcc puts them; Go loads what C stored (an unterminated char[8]
// included); Store leaves the bytes Go left blank alone; and the layout
// the view uses is gcc's offsetof and sizeof.
func TestCViewMatchesC(t *testing.T) {
	ipcchantest.CheckFDs(t)
	bin := buildC(t, "cview", cviewC, "-lrt")
	name := endpoints.ObjectName("cview")
	m, err := endpoints.CreateShm(name, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove()
	defer m.Close()
	const off = 64
	v, err := endpoints.CViewOf[cvShared](m, off)
	if err != nil {
		t.Fatal(err)
	}

	layout := v.Layout()
	want := fmt.Sprintf("sizeof %d %d\n", layout.Size, layout.Align)
	for _, f := range layout.Fields {
		want += fmt.Sprintf("%s %d %d\n", strings.ToLower(f.Name), f.Offset, f.Size)
	}
	out, err := exec.Command(bin, "layout").Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != want {
		t.Fatalf("gcc's layout:\n%s\nthe view's:\n%s", out, want)
	}
	if layout.Size != 56 {
		t.Fatalf("the view's struct is %d bytes, want 56 (Go's own layout is %d)", layout.Size, unsafe.Sizeof(cvShared{}))
	}

	for i := range m.Bytes() {
		m.Bytes()[i] = 0xee // so that bytes Store should not touch show
	}
	if err := v.Store(cvGo); err != nil {
		t.Fatal(err)
	}
	swap := func() string {
		t.Helper()
		out, err := exec.Command(bin, "swap", name, fmt.Sprint(off)).Output()
		if err != nil {
			t.Fatalf("the C peer: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	if got, want := swap(), "1|-42|from-go|1099511627783|-3|1,-2,3|9|2.5|238,238,238,238|65000"; got != want {
		t.Fatalf("C read  %s\nwant    %s", got, want)
	}
	got, err := v.Load()
	if err != nil {
		t.Fatal(err)
	}
	fromC := cvShared{Flag: false, Count: 123456, Name: "12345678", Seq: 99, Tag: -128,
		Vals: [3]int16{-1, 0, 32767}, In: cvInner{A: -9, B: -0.125}, Last: 7}
	if got != fromC {
		t.Fatalf("Go loaded %+v\nwant      %+v", got, fromC)
	}
	if err := v.Store(cvGo); err != nil {
		t.Fatal(err)
	}
	if got, want := swap(), "1|-42|from-go|1099511627783|-3|1,-2,3|9|2.5|171,171,171,171|65000"; got != want {
		t.Fatalf("after C wrote its reserved bytes, Go stored again; C read\n%s\nwant\n%s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { v.Store(cvGo) }); n != 0 {
		t.Errorf("Store allocates %v times", n)
	}
}

// cvTail ends in a zero-length array: Go pads it to 16 bytes, C does not
// (sizeof 8).
type cvTail struct {
	N    int32
	Rest [0]int64
}

type cvPlain struct {
	Count int32
	Flag  bool
	Hits  uint64
}

// Update hands out a pointer only where Go's layout is C's; Load and Store
// work through the C layout either way, at the very end of the mapping
// where Go's larger layout would not fit.
func TestCViewUpdateOnlyWhereGoLayoutIsC(t *testing.T) {
	ipcchantest.CheckFDs(t)
	m, err := endpoints.NewMemfd("cview", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	plain, err := endpoints.CViewOf[cvPlain](m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Update(func(p *cvPlain) { atomic.AddUint64(&p.Hits, 3); p.Flag = true }); err != nil {
		t.Fatalf("Update of a type whose Go layout is C's: %v", err)
	}
	if got, err := plain.Load(); err != nil || got != (cvPlain{Flag: true, Hits: 3}) {
		t.Fatalf("Load after Update = %+v, %v", got, err)
	}

	// A struct ending in a zero-size array: Go pads it to 16 bytes on
	// 64-bit machines, C does not (8). 32-bit layouts differ otherwise.
	if unsafe.Sizeof(uintptr(0)) == 8 {
		tail, err := endpoints.CViewOf[cvTail](m, 4096-8)
		if err != nil {
			t.Fatalf("an 8-byte C struct in the last 8 bytes: %v", err)
		}
		if _, err := endpoints.ViewOf[cvTail](m, 4096-8); !errors.Is(err, endpoints.ErrMappingSize) {
			t.Fatalf("ViewOf, with Go's 16-byte layout, in the last 8 bytes: %v, want ErrMappingSize", err)
		}
		if err := tail.Store(cvTail{N: -5}); err != nil {
			t.Fatal(err)
		}
		if got, err := tail.Load(); err != nil || got.N != -5 {
			t.Fatalf("Load = %+v, %v", got, err)
		}
		ran := false
		err = tail.Update(func(*cvTail) { ran = true })
		if !errors.Is(err, ipcchan.ErrNotSupported) || !strings.Contains(err.Error(), "16 bytes, C's 8") || ran {
			t.Fatalf("Update of a type Go pads differently: %v (ran %v), want ErrNotSupported saying why", err, ran)
		}
	}
	str, err := endpoints.CViewOf[cvShared](m, 0)
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	err = str.Update(func(*cvShared) { ran = true })
	if !errors.Is(err, ipcchan.ErrNotSupported) || !strings.Contains(err.Error(), "Name is a string") || ran {
		t.Fatalf("Update of a type with a char[8]: %v (ran %v), want ErrNotSupported naming the field", err, ran)
	}
}

// Store refuses a string that does not fit its char[N], or holds a NUL,
// before it writes anything.
func TestCViewStoreIsAllOrNothing(t *testing.T) {
	m, err := endpoints.NewMemfd("cview", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := endpoints.CViewOf[cvShared](m, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Store(cvGo); err != nil {
		t.Fatal(err)
	}
	before := string(m.Bytes()[:64])
	for _, bad := range []string{"12345678", "a\x00b"} {
		x := cvGo
		x.Count, x.Name = 1, bad
		if err := v.Store(x); !errors.Is(err, codec.ErrEncode) {
			t.Errorf("Store of Name %q: %v, want ErrEncode", bad, err)
		}
		if string(m.Bytes()[:64]) != before {
			t.Errorf("Store of Name %q failed but wrote", bad)
		}
	}
}

func TestCViewRefusals(t *testing.T) {
	m, err := endpoints.NewMemfd("cview", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := endpoints.CViewOf[struct{ N int }](m, 0); !errors.Is(err, codec.ErrUnsupportedType) || !strings.Contains(err.Error(), "N") {
		t.Errorf("an int field: %v, want ErrUnsupportedType naming it", err)
	}
	if _, err := endpoints.CViewOf[struct{ S string }](m, 0); !errors.Is(err, codec.ErrUnsupportedType) {
		t.Errorf("an untagged string: %v, want ErrUnsupportedType", err)
	}
	// Half the struct's C alignment: 8 on LP64 and most 32-bit ABIs,
	// 4 on i386, whose int64 and double are 4-aligned in structs.
	layout, err := codec.CStructLayout[cvShared]()
	if err != nil {
		t.Fatal(err)
	}
	if off := layout.Align / 2; off == 0 {
		t.Fatalf("cvShared is %d-aligned: the test needs a struct aligned on 2 or more", layout.Align)
	} else if _, err := endpoints.CViewOf[cvShared](m, off); err == nil || !strings.Contains(err.Error(), "not aligned") {
		t.Errorf("offset %d for a %d-aligned struct: %v", off, layout.Align, err)
	}
	for _, off := range []int{-8, 4096 - 48} {
		if _, err := endpoints.CViewOf[cvShared](m, off); !errors.Is(err, endpoints.ErrMappingSize) {
			t.Errorf("offset %d: %v, want ErrMappingSize", off, err)
		}
	}
	var zero endpoints.CView[cvShared]
	if _, err := zero.Load(); err == nil {
		t.Error("Load on a zero CView succeeded")
	}
	if err := zero.Store(cvGo); err == nil {
		t.Error("Store on a zero CView succeeded")
	}
	v, _ := endpoints.CViewOf[cvShared](m, 0)
	m.Close()
	if _, err := v.Load(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Load after Close: %v, want os.ErrClosed", err)
	}
}

// checkLoaded checks what Load made of bytes a peer wrote: bools 0 or 1,
// char[8] strings without a NUL and at most 8 bytes.
func checkLoaded(t *testing.T, x cvShared) {
	t.Helper()
	if b := *(*uint8)(unsafe.Pointer(&x.Flag)); b > 1 {
		t.Fatalf("Load made a bool of byte %d", b)
	}
	if len(x.Name) > 8 || strings.IndexByte(x.Name, 0) >= 0 {
		t.Fatalf("Load made a char[8] into %q", x.Name)
	}
}

// Whatever bytes are in the memory, Load gives a valid value, and Store
// of it gives it back.
func FuzzCViewLoad(f *testing.F) {
	f.Add(make([]byte, 56))
	f.Add([]byte(strings.Repeat("\xff", 56)))
	f.Add([]byte("\x02\x00\x00\x00abcdefgh12345678"))
	m, err := endpoints.NewMemfd("cview-fuzz", 4096)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { m.Close() })
	v, err := endpoints.CViewOf[cvShared](m, 128)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, mem []byte) {
		copy(m.Bytes()[128:128+56], append(mem, make([]byte, 56)...))
		x, err := v.Load()
		if err != nil {
			t.Fatal(err)
		}
		checkLoaded(t, x)
		err = v.Store(x)
		if len(x.Name) == 8 {
			if !errors.Is(err, codec.ErrEncode) {
				t.Fatalf("Store of an 8-byte char[8]: %v, want ErrEncode", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if y, err := v.Load(); err != nil || !sameCV(x, y) {
			t.Fatalf("stored %+v, loaded %+v, %v", x, y, err)
		}
	})
}

// sameCV compares two values, NaN floats equal to themselves.
func sameCV(x, y cvShared) bool {
	return x.Name == y.Name && unsafe.Sizeof(x) == unsafe.Sizeof(y) &&
		fmt.Sprintf("%v %v %v %v %v %v %x %v", x.Flag, x.Count, x.Seq, x.Tag, x.Vals, x.In.A, x.In.B, x.Last) ==
			fmt.Sprintf("%v %v %v %v %v %v %x %v", y.Flag, y.Count, y.Seq, y.Tag, y.Vals, y.In.A, y.In.B, y.Last)
}

func init() {
	// cview-scribble writes random bytes over the first SCRIBBLE_SIZE
	// bytes of the memory on descriptor 3, a NUL now and then, until its
	// standard input closes. It says "scribbling" once it has begun.
	childRoles["cview-scribble"] = func() error {
		var size int
		fmt.Sscan(os.Getenv("SCRIBBLE_SIZE"), &size)
		mem, err := unix.Mmap(3, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		var stop atomic.Bool
		go func() { io.Copy(io.Discard, os.Stdin); stop.Store(true) }()
		for i := 0; !stop.Load(); i++ {
			for j := range mem {
				mem[j] = byte(rand.Uint32())
				if rand.IntN(8) == 0 {
					mem[j] = 0
				}
			}
			if i == 0 {
				fmt.Println("scribbling")
			}
		}
		return nil
	}
}

// A hostile peer rewriting the struct while this process loads it cannot
// crash it or make it see an invalid value.
func TestCViewHostilePeer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	m, err := endpoints.NewMemfd("cview-hostile", 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	v, err := endpoints.CViewOf[cvShared](m, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := m.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := helperCmd(t, "cview-scribble", "SCRIBBLE_SIZE=4096")
	cmd.ExtraFiles = []*os.File{f}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "scribbling\n" {
		t.Fatalf("the scribbler did not start: %q", line)
	}
	// Load until it has seen the peer's writes change the struct a
	// thousand times.
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for loads := 0; len(seen) < 1000; loads++ {
		if loads%1024 == 0 && time.Now().After(deadline) {
			t.Fatalf("Load saw %d different names in 20 s: the peer did not rewrite the memory", len(seen))
		}
		x, err := v.Load()
		if err != nil {
			t.Fatal(err)
		}
		checkLoaded(t, x)
		seen[x.Name] = true
	}
}

// Load, Store and Update on memory a peer shrank return an error wrapping
// ErrCorrupt, instead of the SIGBUS that would kill the process.
func TestCViewSurvivesShrinkingPeer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, kind := range shrinkables {
		t.Run(kind.name, func(t *testing.T) {
			m, shrink := kind.make(t, 4096)
			v, err := endpoints.CViewOf[cvShared](m, 128)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := endpoints.CViewOf[cvPlain](m, 256)
			if err != nil {
				t.Fatal(err)
			}
			if err := v.Store(cvGo); err != nil {
				t.Fatal(err)
			}
			if out := shrink(); out != "ok" {
				t.Fatalf("the peer could not shrink the memory: %s", out)
			}
			_, err = v.Load()
			wantGone(t, "Load", err)
			wantGone(t, "Store", v.Store(cvGo))
			wantGone(t, "Update", plain.Update(func(p *cvPlain) { p.Hits++ }))
		})
	}
}

// CView's Load and Store through the C layout, beside View's plain copy
// of a type whose Go layout is its C layout.
func BenchmarkCView(b *testing.B) {
	m, err := endpoints.NewMemfd("cview-bench", 4096)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	cv, _ := endpoints.CViewOf[cvShared](m, 0)
	plainC, _ := endpoints.CViewOf[cvPlain](m, 128)
	plain, _ := endpoints.ViewOf[cvPlain](m, 128)
	b.Run("CView-char8/Store", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cv.Store(cvGo)
		}
	})
	b.Run("CView-char8/Load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			cv.Load()
		}
	})
	b.Run("CView-plain/Load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			plainC.Load()
		}
	})
	b.Run("View-plain/Load", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			plain.Load()
		}
	})
}
