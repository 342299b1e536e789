package proc

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/ipcchan/go/ipcchan"
)

// TestEnvelopeProtocol checks the example of PROTOCOL.md §12, which a
// worker in another language is written from: the codec names, the
// descriptions and fingerprints of the envelopes, and their bytes.
func TestEnvelopeProtocol(t *testing.T) {
	type job struct{ N int64 }
	jc, rc, err := envelopeCodecs[job, string]()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		typ             reflect.Type
		codec, wantName string
		desc            string
		fp              uint64
	}{
		{reflect.TypeFor[jobMsg[job]](), jc.Name(), "proc-job/binary-le", "struct{ID uint64;Job struct{N int64;};}", 0x0ee967ea0b9ab739},
		{reflect.TypeFor[resultMsg[string]](), rc.Name(), "proc-result/string", "struct{ID uint64;Value string;Err string;Ok bool;}", 0x22dfaf26f7051ce7},
	} {
		if c.codec != c.wantName {
			t.Errorf("codec %q, PROTOCOL.md says %q", c.codec, c.wantName)
		}
		if got := ipcchan.TypeDescription(c.typ); got != c.desc {
			t.Errorf("description %q, PROTOCOL.md says %q", got, c.desc)
		}
		if got := ipcchan.Fingerprint(c.typ); got != c.fp {
			t.Errorf("%s: fingerprint %#016x, PROTOCOL.md says %#016x", c.desc, got, c.fp)
		}
	}
	jb, err := jc.Append(nil, jobMsg[job]{ID: 7, Job: job{N: -2}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0, 0, 0, 0, 7, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}; !bytes.Equal(jb, want) {
		t.Errorf("job envelope % x, PROTOCOL.md says % x", jb, want)
	}
	rb, err := rc.Append(nil, resultMsg[string]{ID: 7, Ok: false, Err: "no", Value: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 2, 'n', 'o', 'x'}; !bytes.Equal(rb, want) {
		t.Errorf("result envelope % x, PROTOCOL.md says % x", rb, want)
	}
}
