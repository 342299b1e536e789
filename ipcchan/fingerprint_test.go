package ipcchan_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/ipcchan/go/ipcchan"
)

type fpNode struct{ Next *fpNode }

type fpList []fpList

type fpCelsius float64

// The vectors of PROTOCOL.md §4, computed by an implementation of the
// text there (not by this package): a reimplementation in another language
// should pass the same table.
func TestFingerprintVectors(t *testing.T) {
	for _, v := range []struct {
		t    reflect.Type
		desc string
		fp   uint64
	}{
		{reflect.TypeFor[[]byte](), "[]uint8", 0x27e5d96ac8cedf7b},
		{reflect.TypeFor[string](), "string", 0x704be0d8faaffc58},
		{reflect.TypeFor[int64](), "int64", 0xf9d0c88f42834344},
		{reflect.TypeFor[[4]float32](), "[4]float32", 0x7217e2fec1d42cc0},
		{reflect.TypeFor[map[string]int](), "map[string]int", 0x16ad61124846fd57},
		{reflect.TypeFor[struct {
			ID   uint32
			Temp float64
		}](), "struct{ID uint32;Temp float64;}", 0x2776e745dfbdd8a4},
		{reflect.TypeFor[struct {
			_ int32
			X uint8
		}](), "struct{_ int32;X uint8;}", 0xa7fd14ae4e9e3959},
		{reflect.TypeFor[struct {
			Name string
			Tags []string
			Meta map[string]any
		}](), "struct{Name string;Tags []string;Meta map[string]interface;}", 0x157fa2114656a4ea},
		{reflect.TypeFor[fpNode](), "struct{Next *<recursive>;}", 0x1c899a6eae66e74c},
		{reflect.TypeFor[fpList](), "[]<recursive>", 0x45307c88c47ee229},
		// Named types count by their underlying kind.
		{reflect.TypeFor[fpCelsius](), "float64", 0x8cf8aea3885527a7},
	} {
		if got := ipcchan.TypeDescription(v.t); got != v.desc {
			t.Errorf("TypeDescription(%v) = %q, want %q", v.t, got, v.desc)
		}
		if got := ipcchan.Fingerprint(v.t); got != v.fp {
			t.Errorf("Fingerprint(%v) = %#016x, want %#016x", v.t, got, v.fp)
		}
	}
}

func ExampleTypeDescription() {
	type Reading struct {
		ID   uint32
		Temp float64
	}
	t := reflect.TypeFor[Reading]()
	fmt.Println(ipcchan.TypeDescription(t))
	fmt.Printf("%#016x\n", ipcchan.Fingerprint(t))
	// Output:
	// struct{ID uint32;Temp float64;}
	// 0x2776e745dfbdd8a4
}
