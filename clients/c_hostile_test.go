package clients_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/ctest"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

var sanitized struct {
	sync.Mutex
	bins map[string]string
}

// cHostilePeers returns c_peer built as cProgram builds it and, where gcc
// can, once more with -fsanitize=address,undefined (every finding fatal),
// so that each hostile input runs against both.
func cHostilePeers(t *testing.T) []string {
	t.Helper()
	bins := []string{cProgram(t, "c_peer")}
	sanitized.Lock()
	defer sanitized.Unlock()
	if bin, ok := sanitized.bins["c_peer"]; ok {
		if bin != "" {
			bins = append(bins, bin)
		}
		return bins
	}
	if sanitized.bins == nil {
		sanitized.bins = map[string]string{}
	}
	probeArgs := []string{"-fsanitize=address,undefined", "-x", "c", "-o", os.DevNull, "-"}
	if runtime.GOARCH == "386" {
		probeArgs = append([]string{"-m32"}, probeArgs...) // as ctest builds for the test's architecture
	}
	probe := exec.Command("gcc", probeArgs...)
	probe.Stdin = strings.NewReader("int main(void) { return 0; }\n")
	if err := probe.Run(); err != nil {
		t.Logf("gcc cannot build with -fsanitize=address,undefined here (%v): the hostile inputs run against the plain build only", err)
		sanitized.bins["c_peer"] = ""
		return bins
	}
	src, err := os.ReadFile(filepath.Join("c", "peers", "c_peer.c"))
	if err != nil {
		t.Fatal(err)
	}
	include, _ := filepath.Abs("c")
	cPrograms.mu.Lock()
	dir := cPrograms.dir // removed after the run with the other builds
	cPrograms.mu.Unlock()
	bin := ctest.BuildIn(t, dir, "c_peer_san", string(src), "-std=c11", "-Wextra", "-Werror", "-I", include,
		"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-lrt")
	sanitized.bins["c_peer"] = bin
	return append(bins, bin)
}

// runCOn runs the C peer with args on the descriptor f handed over as "ch"
// (IPCCHAN_FILES=ch=3), after feed has written to the other end, and
// returns its output lines and exit error. A sanitizer finding, a crash or
// a hang fails the test.
func runCOn(t *testing.T, bin string, f *os.File, args []string, feed func()) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(os.Environ(), "IPCCHAN_FILES=ch=3", "ASAN_OPTIONS=detect_leaks=0:abort_on_error=0")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	feed()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := out.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() != 3 || err != nil && !ok {
		t.Errorf("C receiver %v: %v (a crash, not an error return)\n%s", args, err, stderr.String())
	}
	if strings.Contains(stderr.String(), "Sanitizer") || strings.Contains(stderr.String(), "runtime error") {
		t.Errorf("C receiver %v:\n%s", args, stderr.String())
	}
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

func frame(tag uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, tag)
	return append(b, payload...)
}

func header(n, tag uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, n), tag)
}

// helloOf is the hello of a []byte channel (codec bytes), or of another
// codec and type description.
func helloOf(codecName, desc string) []byte {
	b := append([]byte("IPCCHAN\x00"), 0, 1, byte(len(codecName)))
	b = append(b, codecName...)
	h := uint64(0xcbf29ce484222325)
	for _, c := range []byte(desc) {
		h = (h ^ uint64(c)) * 0x100000001b3
	}
	return binary.BigEndian.AppendUint64(b, h)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Malformed byte streams to the C stream receiver: it reports each with
// its errno — a 4 GiB header is skipped (EMSGSIZE) without being
// allocated, the stream then ending inside it (ENODATA); a frame over the
// limit is skipped and the next one arrives; truncated frames and headers
// are ENODATA, never a clean end; frames before a hello, wrong and
// over-long hellos are EPROTO — and it never crashes or reads out of
// bounds (random streams, and everything under ASan and UBSan too).
func TestCHostileStream(t *testing.T) {
	ipcchantest.CheckFDs(t)
	hello := helloOf("bytes", "[]uint8")
	cases := []struct {
		name  string
		args  []string
		input []byte
		want  []string
	}{
		{"4GiB", []string{"-nohs"}, cat(header(math.MaxUint32, 5), make([]byte, 10)),
			[]string{"error EMSGSIZE 5 4294967295", "error ENODATA 0 0"}},
		{"4GiB before the hello", nil, cat(header(math.MaxUint32, 5), make([]byte, 10)), []string{"error EPROTO 0 0"}},
		{"4GiB after the hello", nil, cat(frame(0x7fffffff, hello), header(math.MaxUint32, 5)),
			[]string{"error EMSGSIZE 5 4294967295", "error ENODATA 0 0"}},
		{"over the limit, then a frame", []string{"-nohs", "-limit", "100"}, cat(frame(1, make([]byte, 200)), frame(2, []byte("abc"))),
			[]string{"error EMSGSIZE 1 200", cLine(2, []byte("abc")), "end"}},
		{"over the buffer, then a frame", []string{"-nohs", "-cap", "16"}, cat(frame(1, make([]byte, 17)), frame(2, make([]byte, 16))),
			[]string{"error EMSGSIZE 1 17", cLine(2, make([]byte, 16)), "end"}},
		{"truncated frame", []string{"-nohs"}, cat(frame(1, []byte("ok")), header(100, 0), make([]byte, 10)),
			[]string{cLine(1, []byte("ok")), "error ENODATA 0 100"}},
		{"truncated header", []string{"-nohs"}, []byte{0, 0, 0, 1, 0}, []string{"error ENODATA 0 0"}},
		{"frame before the hello", nil, cat(frame(1, []byte("x")), frame(0x7fffffff, hello)), []string{"error EPROTO 0 0"}},
		{"another type's hello", nil, cat(frame(0x7fffffff, helloOf("string", "string")), frame(1, []byte("x"))), []string{"error EPROTO 0 0"}},
		{"another version's hello", nil, cat(frame(0x7fffffff, append(append([]byte{}, hello[:8]...), append([]byte{0, 2}, hello[10:]...)...))), []string{"error EPROTO 0 0"}},
		{"a hello too long", nil, frame(0x7fffffff, make([]byte, 275)), []string{"error EPROTO 0 0"}},
		{"a short hello", nil, frame(0x7fffffff, hello[:10]), []string{"error EPROTO 0 0"}},
		{"the hello twice", nil, cat(frame(0x7fffffff, hello), frame(1, []byte("a")), frame(0x7fffffff, hello), frame(2, nil)),
			[]string{cLine(1, []byte("a")), cLine(2, nil), "end"}},
		{"a hello cut short", nil, cat(header(uint32(len(hello)), 0x7fffffff), hello[:5]), []string{"error ENODATA 0 0"}},
	}
	for _, bin := range cHostilePeers(t) {
		for _, c := range cases {
			t.Run(filepath.Base(bin)+"/"+c.name, func(t *testing.T) {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				got := runCOn(t, bin, r, append([]string{"recv", "stream"}, c.args...), func() {
					w.Write(c.input)
					w.Close()
				})
				checkLines(t, "C receiver", got, c.want)
			})
		}
		t.Run(filepath.Base(bin)+"/random", func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range 20 {
				input := make([]byte, 1+rng.IntN(3000))
				for j := range input {
					input[j] = byte(rng.UintN(256))
				}
				if i%2 == 0 { // plausible headers: short lengths
					for j := 0; j+8 <= len(input); j += 8 + int(input[j+3]) {
						input[j], input[j+1], input[j+2] = 0, 0, 0
					}
				}
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				runCOn(t, bin, r, []string{"recv", "stream", "-nohs", "-cap", "64", "-limit", "128"}, func() {
					w.Write(input)
					w.Close()
				})
			}
		})
	}
}

// socketpair returns both ends of a Unix socket pair of typ as files.
func socketpair(t *testing.T, typ int) (*os.File, *os.File) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, typ|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
}

func dgram(tag uint32, payload []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, tag), payload...)
}

// Malformed datagrams and records to the C packet receiver: shorter than
// the tag, a marker with a payload, an empty seqpacket record from a live
// peer are dropped with EBADMSG; longer than the buffer with EMSGSIZE;
// the good ones between arrive.
func TestCHostilePackets(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, bin := range cHostilePeers(t) {
		t.Run(filepath.Base(bin)+"/unixgram", func(t *testing.T) {
			a, b := socketpair(t, syscall.SOCK_DGRAM)
			got := runCOn(t, bin, a, []string{"recv", "packet", "-cap", "10"}, func() {
				for _, d := range [][]byte{{1, 2}, dgram(math.MaxUint32, []byte{0, 0}), dgram(1, []byte("ok")), {}, dgram(2, make([]byte, 11)), dgram(math.MaxUint32, nil)} {
					b.Write(d)
				}
				b.Close()
			})
			checkLines(t, "C receiver", got, []string{"error EBADMSG 0 0", "error EBADMSG 0 0", cLine(1, []byte("ok")), "error EBADMSG 0 0", "error EMSGSIZE 2 11", "end"})
		})
		t.Run(filepath.Base(bin)+"/unix stream, descriptor frames", func(t *testing.T) {
			// Tag bit 31 on a Unix stream socket: a count, then the value.
			a, b := socketpair(t, syscall.SOCK_STREAM)
			got := runCOn(t, bin, a, []string{"recv", "stream", "-nohs"}, func() {
				b.Write(cat(frame(0x80000001, []byte{0, 0}), frame(0x80000002, []byte{0, 0, 0, 0, 'o', 'k'}), frame(3, []byte("x"))))
				b.Close()
			})
			checkLines(t, "C receiver", got, []string{"error EBADMSG 2147483649 2", cLine(2, []byte("ok")), cLine(3, []byte("x")), "end"})
		})
		t.Run(filepath.Base(bin)+"/seqpacket", func(t *testing.T) {
			a, b := socketpair(t, syscall.SOCK_SEQPACKET)
			got := runCOn(t, bin, a, []string{"recv", "packet"}, func() {
				for _, d := range [][]byte{{}, {9}, dgram(1, []byte("ok"))} {
					b.Write(d)
				}
				b.Close()
			})
			checkLines(t, "C receiver", got, []string{"error EBADMSG 0 0", "error EBADMSG 0 0", cLine(1, []byte("ok")), "end"})
		})
	}
}

// Bodies forged on queues by a raw Go sender: the marker at a priority
// other than 0 and the marker with bytes after it are values; an escape
// carries what follows it; a body longer than the buffer is dropped with
// EMSGSIZE; only the exact marker at priority 0 ends the stream. On SysV,
// a message type above 2^32 reaches the C receiver whole.
func TestCHostileQueues(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := testCtx(t)
	for _, bin := range cHostilePeers(t) {
		t.Run(filepath.Base(bin)+"/posix", func(t *testing.T) {
			name := mqName(t, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 64})
			tx, err := endpoints.OpenMQSender[[]byte](name, ipcchan.WithForeignPeer())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range []struct {
				prio uint32
				body string
			}{{5, queueEOS}, {1, queueEOS[:15] + "\x02abc"}, {2, queueEOS + "x"}, {0, queueEOS[:15] + "\x02"}, {3, strings.Repeat("z", 20)}, {0, queueEOS}} {
				if err := tx.SendTag(ctx, m.prio, []byte(m.body)); err != nil {
					t.Fatal(err)
				}
			}
			tx.Close()
			got, _ := startC(t, bin, []string{"recv", "mq:" + name, "-cap", "19"}).wait()
			checkLines(t, "C receiver", got, []string{cLine(5, []byte(queueEOS)), "error EMSGSIZE 3 20", cLine(2, []byte(queueEOS+"x")),
				cLine(1, []byte("abc")), cLine(0, nil), "end"})
		})
		t.Run(filepath.Base(bin)+"/sysv", func(t *testing.T) {
			if strconv.IntSize == 32 {
				t.Skip("a C long holds no type above 2^31 - 1 on this machine")
			}
			q := sysvQueue(t)
			for _, m := range []struct {
				typ  int64
				body string
			}{{1<<32 + 1, "big"}, {math.MaxInt64, "max"}, {3000000000, queueEOS[:15] + "\x02"}, {4, strings.Repeat("z", 20)}, {7, queueEOS}} {
				if err := q.Send(ctx, m.typ, []byte(m.body)); err != nil {
					t.Fatal(err)
				}
			}
			got, _ := startC(t, bin, []string{"recv", fmt.Sprintf("sysvid:%d:0", q.ID()), "-cap", "19"}).wait()
			checkLines(t, "C receiver", got, []string{cLine(1<<32+1, []byte("big")), cLine(math.MaxInt64, []byte("max")), cLine(3000000000, nil),
				"error EMSGSIZE 4 20", "end"})
		})
	}
}

// IPCCHAN_FILES as a careless or hostile parent writes it: the C header
// refuses a name given twice (PROTOCOL.md §9: each name appears once; it
// took the first) and a descriptor that is not open in the child (it
// returned it, for the caller to fail on later or, worse, to use a
// descriptor the process opens afterwards), as the Go and Python ends do.
func TestCInheritMisuse(t *testing.T) {
	bin := cProgram(t, "c_inherit")
	for _, c := range []struct{ kind, env, name, want string }{
		{"fd", "ch=3", "ch", "3"},
		{"fd", "x=4,ch=3", "ch", "3"},
		{"fd", "ch=3,ch=4", "ch", "-1 EBADMSG"},
		{"fd", "ch=3,other=4,ch=3", "ch", "-1 EBADMSG"},
		{"fd", "ch=9", "ch", "-1 EBADF"},
		{"fd", "ch=3+9+4", "ch", "-1 EBADF"},
		{"sysv", "q=sysvmq:1:1:", "q", "1 1 0"},
		{"sysv", "q=sysvmq:1:1:,q=sysvmq:2:1:", "q", "-1 EBADMSG"},
		{"ring", "r=3,r=4", "r", "-1 EBADMSG"},
	} {
		t.Run(c.kind+" "+c.env, func(t *testing.T) {
			ipcchantest.CheckFDs(t)
			pr, pw, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer pr.Close()
			defer pw.Close()
			cmd := exec.Command(bin, c.kind, c.name)
			cmd.Env = append(os.Environ(), "IPCCHAN_FILES="+c.env)
			cmd.ExtraFiles = []*os.File{pr, pw} // 3 and 4; 9 is not open
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("c_inherit: %v", err)
			}
			if got := strings.TrimSpace(string(out)); got != c.want {
				t.Errorf("IPCCHAN_FILES=%s: %s %s: got %q, want %q", c.env, c.kind, c.name, got, c.want)
			}
		})
	}
}

// Every end of the streams and queues section used after its close: a
// second close returns 0, and a send fails with EBADF as a receive (and the
// ring's ends) do; it failed with EINVAL, which says an argument was wrong.
func TestCClosedEnds(t *testing.T) {
	out, err := exec.Command(cProgram(t, "c_closed")).CombinedOutput()
	if err != nil {
		t.Fatalf("c_closed: %v\n%s", err, out)
	}
	var want []string
	for _, end := range []string{"stream", "packet", "mq", "sysv"} {
		want = append(want, end+"-send 0 -1 EBADF", end+"-recv 0 -1 EBADF")
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
		t.Errorf("C ends after close:\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}
