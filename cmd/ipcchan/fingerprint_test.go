package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// The command describes a type expression exactly as package ipcchan
// describes the same type: it is the reference a program in another
// language checks itself against, so it must not drift from the library.
func TestFingerprintMatchesTheLibrary(t *testing.T) {
	for _, c := range []struct {
		expr string
		typ  reflect.Type
	}{
		{"[]byte", reflect.TypeFor[[]byte]()},
		{"string", reflect.TypeFor[string]()},
		{"rune", reflect.TypeFor[rune]()},
		{"[4]float32", reflect.TypeFor[[4]float32]()},
		{"map[string][]int", reflect.TypeFor[map[string][]int]()},
		{"*uint16", reflect.TypeFor[*uint16]()},
		{"struct{ ID uint32; Temp float64 }", reflect.TypeFor[struct {
			ID   uint32
			Temp float64
		}]()},
		{"struct{ _ int32; a, b uint8; C [2]struct{ X any } }", reflect.TypeFor[struct {
			_    int32
			a, b uint8
			C    [2]struct{ X any }
		}]()},
		{"struct{ F func(); Ch chan int; P unsafe.Pointer; E error }", reflect.TypeFor[struct {
			F  func()
			Ch chan int
			P  unsafe.Pointer
			E  error
		}]()},
	} {
		var out, errOut bytes.Buffer
		if code := run([]string{"fingerprint", c.expr}, &out, &errOut); code != 0 {
			t.Fatalf("fingerprint %q: exit %d: %s", c.expr, code, errOut.String())
		}
		want := fmt.Sprintf("description %s\nfingerprint %#016x\n", ipcchan.TypeDescription(c.typ), ipcchan.Fingerprint(c.typ))
		if out.String() != want {
			t.Errorf("fingerprint %q printed\n%s\nwant\n%s", c.expr, out.String(), want)
		}
	}
}

// The hello frame the command prints is the first frame a real Sender
// writes on a byte stream.
func TestFingerprintHelloIsWhatASenderWrites(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tx, err := endpoints.FileSender[[]byte](w)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	written, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"fingerprint", "-codec", "bytes", "[]byte"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var frame string
	for _, line := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "frame"); ok {
			frame = strings.TrimSpace(rest)
		}
	}
	if got := fmt.Sprintf("% x", written); !strings.HasPrefix(got, frame) || frame == "" {
		t.Fatalf("the Sender wrote\n%s\nthe command says the hello frame is\n%s", got, frame)
	}
}

// What the command cannot describe it refuses with a reason.
func TestFingerprintRefusals(t *testing.T) {
	for _, expr := range []string{"Celsius", "time.Duration", "[n]int", "[-1]int", "struct{", "1+2"} {
		var out, errOut bytes.Buffer
		if code := run([]string{"fingerprint", expr}, &out, &errOut); code == 0 || errOut.Len() == 0 {
			t.Errorf("fingerprint %q: exit %d, stderr %q; want a refusal", expr, code, errOut.String())
		}
	}
}
