package natsjs_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/go/natsjs"
)

// What another party wrote, parsed: never a panic, and what is accepted
// is exactly the canonical form.

func FuzzParseTag(f *testing.F) {
	for _, s := range []string{"", "1", "4294967295", "4294967296", "0", "01", "+1", "-1", "1a", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := natsjs.ParseTag(s)
		if err != nil {
			return
		}
		if s == "" {
			if v != 0 {
				t.Fatalf("ParseTag(\"\") = %d", v)
			}
			return
		}
		if strconv.FormatUint(uint64(v), 10) != s {
			t.Fatalf("ParseTag(%q) = %d: not its canonical form", s, v)
		}
	})
}

func FuzzParseInfo(f *testing.F) {
	good, _ := json.Marshal(map[string]string{"url": "nats://127.0.0.1:4222", "token": strings.Repeat("ab", 32)})
	f.Add(good)
	f.Add([]byte(`{"url":"nats://10.0.0.1:4222","token":"00"}`))
	f.Add([]byte(`{"url":"nats://127.0.0.1:0","token":""}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, b []byte) {
		url, token, err := natsjs.ParseInfo(b)
		if err != nil {
			return
		}
		if !strings.HasPrefix(url, "nats://127.0.0.1:") || len(token) != 64 {
			t.Fatalf("ParseInfo accepted url %q token %q", url, token)
		}
	})
}

func FuzzParseMeta(f *testing.F) {
	md := natsjs.MetaFor[int](natsjs.Broadcast)
	f.Add(md["ipcchan.codec"], md["ipcchan.type"], md["ipcchan.fingerprint"], md["ipcchan.mode"])
	f.Add("json", "", "zzzzzzzzzzzzzzzz", "workqueue")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, c, typ, fp, mode string) {
		in := map[string]string{"ipcchan.codec": c, "ipcchan.type": typ, "ipcchan.fingerprint": fp, "ipcchan.mode": mode}
		gc, gt, gfp, gm, err := natsjs.ParseMeta(in)
		if err != nil {
			return
		}
		if gc != c || gt != typ || gm.String() != mode || len(fp) != 16 {
			t.Fatalf("ParseMeta(%v) = %q %q %x %v", in, gc, gt, gfp, gm)
		}
		if v, err := strconv.ParseUint(fp, 16, 64); err != nil || v != gfp {
			t.Fatalf("fingerprint %q read as %x", fp, gfp)
		}
	})
}

func FuzzParseAckReply(f *testing.F) {
	f.Add("$JS.ACK.IPCCHAN_x.work.1.42.7.1700000000000000000.0")
	f.Add("$JS.ACK.dom.hash.IPCCHAN_x.work.1.42.7.1700000000000000000.0.rnd")
	f.Add("$JS.ACK.a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		sseq, dseq, err := natsjs.ParseAckReply(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(s, "$JS.ACK.") || !strings.Contains(s, "."+strconv.FormatUint(sseq, 10)+"."+strconv.FormatUint(dseq, 10)+".") {
			t.Fatalf("ParseAckReply(%q) = %d, %d", s, sseq, dseq)
		}
	})
}
