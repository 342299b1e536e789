package clients_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipcchan/go/codec"
	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/proc"
	"golang.org/x/sys/unix"
)

// The Python package (python/ipcchan) against Go endpoints, across real
// processes: python/peers/py_peer.py sends or receives what the arguments
// say and prints one line per message received ("msg TAG SIZE SHA256" for
// bytes, "val TAG JSON" for values, then "eof" or "error CLASS: TEXT"), which
// these tests check against what Go sent; values Python sends are checked
// here as Go receives them. The content is pyPayload, pySize and pyTag on
// both sides.

// pyPattern holds the bytes of every payload: message i of n bytes is
// pyPattern[i%256 : i%256+n], as py_peer.py's payload computes it.
var pyPattern = func() []byte {
	b := make([]byte, 16<<20+512)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func pyPayload(i, n int) []byte { return pyPattern[i%256 : i%256+n] }

// pySize is py_peer.py's size: sizes from 0 up to limit, the last message
// exactly at it.
func pySize(i, count, limit int) int {
	switch {
	case i == count-1:
		return limit
	case i%10 != 0:
		return (i * 97) % (limit + 1)
	}
	return i % 3
}

// pyTag is py_peer.py's tag_of.
func pyTag(transport string, i int) uint32 {
	switch transport {
	case "posixmq":
		return 3
	case "sysvmq":
		return uint32(1 + i%3)
	}
	return uint32((uint64(i) * 2654435761) % 0x7FFFFFFF)
}

// pySample is py_peer.py's Sample.
type pySample struct {
	ID   uint32
	Temp float64
	Name [8]byte
	Ok   bool
	Pair [2]int16
}

func pySampleOf(i int) pySample {
	s := pySample{ID: uint32(i), Temp: float64(i) / 4, Ok: i%2 == 0, Pair: [2]int16{int16(i % 100), -int16(i % 300)}}
	copy(s.Name[:], fmt.Sprintf("n%d", i))
	return s
}

// pyDoc is py_peer.py's Doc, for the JSON codec.
type pyDoc struct {
	Name  string
	Tags  []string
	Count int64
	Blob  []byte
	Meta  map[string]int
}

func pyDocOf(i int) pyDoc {
	d := pyDoc{Name: fmt.Sprintf("doc %d é", i), Tags: []string{}, Count: -int64(i) * 1000003,
		Blob: append([]byte{}, pyPayload(i, i%17)...), Meta: map[string]int{}}
	for j := range i % 4 {
		d.Tags = append(d.Tags, fmt.Sprintf("t%d", j))
	}
	for j := range i % 3 {
		d.Meta[fmt.Sprintf("k%d", j)] = j * i
	}
	return d
}

func pyString(i, n int) string { return fmt.Sprintf("s%d:", i) + strings.Repeat("x", max(0, n-8)) }

// pyProc is a running py_peer.py.
type pyProc struct {
	t     testing.TB
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	done  chan struct{}
	err   error
	timer *time.Timer
}

// startPy starts py_peer.py with args, handing it ends (endpoints.Start),
// and kills it if it runs longer than a minute.
func startPy(t testing.TB, args []string, ends ...endpoints.Handed) *pyProc {
	t.Helper()
	return startPyProgram(t, "py_peer", args, ends...)
}

func startPyProgram(t testing.TB, name string, args []string, ends ...endpoints.Handed) *pyProc {
	t.Helper()
	cmd := pythonCommand(t, name, args...)
	return startCmd(t, cmd, ends...)
}

func startCmd(t testing.TB, cmd *exec.Cmd, ends ...endpoints.Handed) *pyProc {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Stdin != nil {
		t.Fatal("startCmd sets the command's stdin")
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := endpoints.Start(cmd, ends...); err != nil {
		t.Fatal(err)
	}
	p := &pyProc{t: t, cmd: cmd, in: in, lines: make(chan string, 4096), done: make(chan struct{})}
	p.timer = time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		p.timer.Stop()
		if p.err != nil && stderr.Len() > 0 {
			p.err = fmt.Errorf("%w; stderr:\n%s", p.err, stderr.String())
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	return p
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// line returns the program's next line of output, failing after 30 s or at
// its end.
func (p *pyProc) line() string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			<-p.done
			p.t.Fatalf("the Python peer ended its output early: %v", p.err)
		}
		return l
	case <-time.After(30 * time.Second):
		p.t.Fatal("no output from the Python peer within 30 s")
	}
	return ""
}

// expect fails unless the next line starts with prefix.
func (p *pyProc) expect(prefix string) string {
	p.t.Helper()
	l := p.line()
	if !strings.HasPrefix(l, prefix) {
		p.t.Fatalf("the Python peer said %q, want %q...", l, prefix)
	}
	return l
}

// wait waits for the program to exit (30 s at most) and fails unless it
// exited with status 0.
func (p *pyProc) wait() {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("the Python peer did not exit within 30 s")
	}
	for l := range p.lines {
		p.t.Errorf("unexpected output from the Python peer: %q", l)
	}
	if p.err != nil {
		p.t.Fatalf("the Python peer failed: %v", p.err)
	}
}

// stdin returns the program's standard input.
func (p *pyProc) stdin() io.Writer { return p.in }

// kill kills the program with SIGKILL and waits for it.
func (p *pyProc) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func pyCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkBytesLines reads the receiver's lines for count messages sent with
// pyPayload, pySize(limit) and pyTag, then "eof".
func checkBytesLines(t *testing.T, p *pyProc, transport string, count, limit int) {
	t.Helper()
	for i := range count {
		b := pyPayload(i, pySize(i, count, limit))
		sum := sha256.Sum256(b)
		want := fmt.Sprintf("msg %d %d %s", pyTag(transport, i), len(b), hex.EncodeToString(sum[:]))
		if got := p.line(); got != want {
			t.Fatalf("message %d: the Python receiver got %q, want %q", i, got, want)
		}
	}
	p.expect("eof")
}

// sendBytes sends count messages (pyPayload, pySize, pyTag) and closes tx.
func sendBytes(t *testing.T, ctx context.Context, tx *ipcchan.Sender[[]byte], transport string, count, limit int) {
	t.Helper()
	for i := range count {
		if err := tx.SendTag(ctx, pyTag(transport, i), pyPayload(i, pySize(i, count, limit))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
}

// recvBytes receives count messages from a Python sender and checks them
// and the end of stream.
func recvBytes(t *testing.T, ctx context.Context, rx *ipcchan.Receiver[[]byte], transport string, count, limit int) {
	t.Helper()
	for i := range count {
		v, tag, err := rx.RecvTag(ctx)
		if err != nil {
			t.Fatalf("receive %d: %v", i, err)
		}
		want := pyPayload(i, pySize(i, count, limit))
		if tag != pyTag(transport, i) || string(v) != string(want) {
			t.Fatalf("message %d: tag %d, %d bytes; want tag %d, %d bytes (content equal: %v)", i, tag, len(v), pyTag(transport, i), len(want), string(v) == string(want))
		}
	}
	if _, err := rx.Recv(ctx); err != io.EOF {
		t.Fatalf("after %d messages: %v, want io.EOF", count, err)
	}
}

// Limits each transport is tested up to, set on both ends.
const (
	pyStreamLimit = 64 << 10
	pyFIFOLimit   = 4096 - 8 // frames written whole to a FIFO
	pyPacketLimit = 16 << 10
	pyMQSize      = 512
	pyCount       = 300
)

func pyArgs(role, transport, addr string, extra ...string) []string {
	return append([]string{role, "--transport", transport, "--addr", addr}, extra...)
}

// TestPythonPipe: frames, the hello and end of stream on an anonymous pipe,
// with bytes, string, binary-le, binary-be and JSON values, both ways.
func TestPythonPipe(t *testing.T) {
	ipcchantest.CheckFDs(t)
	t.Run("GoToPython", func(t *testing.T) {
		ctx := pyCtx(t)
		tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithMaxMessageSize(pyStreamLimit))
		if err != nil {
			t.Fatal(err)
		}
		p := startPy(t, pyArgs("recv", "pipe", "in", "--limit", strconv.Itoa(pyStreamLimit)), endpoints.Pass("in", rx))
		p.expect("ready")
		sendBytes(t, ctx, tx, "pipe", pyCount, pyStreamLimit)
		checkBytesLines(t, p, "pipe", pyCount, pyStreamLimit)
		p.wait()
	})
	t.Run("PythonToGo", func(t *testing.T) {
		ctx := pyCtx(t)
		tx, rx, err := endpoints.PipePair[[]byte](ipcchan.WithMaxMessageSize(pyStreamLimit))
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		p := startPy(t, pyArgs("send", "pipe", "out", "--limit", strconv.Itoa(pyStreamLimit)), endpoints.Pass("out", tx))
		p.expect("ready")
		recvBytes(t, ctx, rx, "pipe", pyCount, pyStreamLimit)
		p.wait()
	})
	t.Run("Values", func(t *testing.T) {
		const n = 50
		le, err := codec.Binary[pySample](binary.LittleEndian)
		if err != nil {
			t.Fatal(err)
		}
		be, err := codec.Binary[pySample](binary.BigEndian)
		if err != nil {
			t.Fatal(err)
		}
		pipeValues(t, "string", n, pyString, nil)
		pipeValues(t, "binary-sample", n, func(i, _ int) pySample { return pySampleOf(i) }, le)
		pipeValues(t, "binary-be-sample", n, func(i, _ int) pySample { return pySampleOf(i) }, be)
		pipeValues(t, "json-doc", n, func(i, _ int) pyDoc { return pyDocOf(i) }, codec.JSON[pyDoc]())
	})
}

// pipeValues sends n values of T made by make_ from Go to Python and back
// over pipes with codec c (nil: codec.Default), Python's codec being
// pyCodec, and checks each exactly: Python prints the values it received as
// JSON, which Go decodes and compares; Go compares what Python sent.
func pipeValues[T any](t *testing.T, pyCodec string, n int, make_ func(i, size int) T, c codec.Codec[T]) {
	t.Run(pyCodec, func(t *testing.T) {
		ctx := pyCtx(t)
		var opts []ipcchan.Option
		if c != nil {
			opts = append(opts, ipcchan.WithCodec(c))
		}
		tx, rx, err := endpoints.PipePair[T](opts...)
		if err != nil {
			t.Fatal(err)
		}
		p := startPy(t, pyArgs("recv", "pipe", "in", "--codec", pyCodec), endpoints.Pass("in", rx))
		p.expect("ready")
		for i := range n {
			if err := tx.SendTag(ctx, pyTag("pipe", i), make_(i, pySize(i, n, 100))); err != nil {
				t.Fatal(err)
			}
		}
		tx.Close()
		for i := range n {
			l := p.expect("val ")
			tagText, js, _ := strings.Cut(strings.TrimPrefix(l, "val "), " ")
			var got T
			if err := json.Unmarshal([]byte(js), &got); err != nil {
				t.Fatalf("value %d: %q: %v", i, l, err)
			}
			if want := make_(i, pySize(i, n, 100)); tagText != strconv.Itoa(int(pyTag("pipe", i))) || !reflect.DeepEqual(got, want) {
				t.Fatalf("value %d: Python received tag %s %+v, want tag %d %+v", i, tagText, got, pyTag("pipe", i), want)
			}
		}
		p.expect("eof")
		p.wait()

		tx, rx, err = endpoints.PipePair[T](opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		p = startPy(t, pyArgs("send", "pipe", "out", "--codec", pyCodec, "--count", strconv.Itoa(n), "--limit", "100"), endpoints.Pass("out", tx))
		p.expect("ready")
		for i := range n {
			v, tag, err := rx.RecvTag(ctx)
			if err != nil {
				t.Fatalf("value %d: %v", i, err)
			}
			if want := make_(i, pySize(i, n, 100)); tag != pyTag("pipe", i) || !reflect.DeepEqual(v, want) {
				t.Fatalf("value %d: Go received tag %d %+v, want tag %d %+v", i, tag, v, pyTag("pipe", i), want)
			}
		}
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("after %d values: %v, want io.EOF", n, err)
		}
		p.wait()
	})
}

// pyTransport is how a test sets up one transport between Go and Python.
type pyTransport struct {
	name  string
	limit int
	// setup makes what the transport needs and returns py_peer.py's --addr.
	setup func(t *testing.T) string
	// goSend and goRecv open the Go end at addr, calling start (which
	// starts the Python peer and waits until its end is open) at the
	// point the transport needs the peer.
	goSend func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Sender[[]byte]
	goRecv func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Receiver[[]byte]
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// sysvLimit is the largest SysV message the tests send: 8 KiB, or the
// system's msgmax if lower.
func sysvLimit() int {
	b, err := os.ReadFile("/proc/sys/kernel/msgmax")
	if err != nil {
		return 8192
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 8192
	}
	return min(n, 8192)
}

func listenConn(t *testing.T, ctx context.Context, network, addr string, limit int, start func()) *endpoints.Conn[[]byte, []byte] {
	l, err := endpoints.Listen[[]byte, []byte](ctx, network, addr, ipcchan.WithMaxMessageSize(limit))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	start()
	c, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var pyTransports = []pyTransport{
	{
		name: "fifo", limit: pyFIFOLimit,
		setup: func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "fifo")
			if err := endpoints.CreateFIFO(path); err != nil {
				t.Fatal(err)
			}
			return path
		},
		goSend: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Sender[[]byte] {
			start()
			v, err := endpoints.OpenFIFOSender[[]byte](ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		goRecv: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Receiver[[]byte] {
			start()
			v, err := endpoints.OpenFIFOReceiver[[]byte](ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
	},
	{
		name: "unix", limit: pyStreamLimit,
		setup: func(t *testing.T) string { return filepath.Join(t.TempDir(), "sock") },
		goSend: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Sender[[]byte] {
			c := listenConn(t, ctx, "unix", addr, pyStreamLimit, start)
			c.Receiver().Close()
			return c.Sender()
		},
		goRecv: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Receiver[[]byte] {
			c := listenConn(t, ctx, "unix", addr, pyStreamLimit, start)
			c.Sender().Close()
			return c.Receiver()
		},
	},
	{
		name: "seqpacket", limit: pyPacketLimit,
		setup: func(t *testing.T) string { return filepath.Join(t.TempDir(), "sock") },
		goSend: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Sender[[]byte] {
			c := listenConn(t, ctx, "unixpacket", addr, pyPacketLimit, start)
			c.Receiver().Close()
			return c.Sender()
		},
		goRecv: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Receiver[[]byte] {
			c := listenConn(t, ctx, "unixpacket", addr, pyPacketLimit, start)
			c.Sender().Close()
			return c.Receiver()
		},
	},
	{
		name: "unixgram", limit: pyPacketLimit,
		setup: func(t *testing.T) string { return filepath.Join(t.TempDir(), "sock") },
		goSend: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Sender[[]byte] {
			start() // the Python receiver binds addr
			v, err := endpoints.DialPacket[[]byte](ctx, "unixgram", addr)
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		goRecv: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Receiver[[]byte] {
			rx, _, err := endpoints.ListenPacket[[]byte](ctx, "unixgram", addr, ipcchan.WithMaxMessageSize(pyPacketLimit))
			if err != nil {
				t.Fatal(err)
			}
			start()
			return rx
		},
	},
	{
		name: "posixmq", limit: pyMQSize,
		setup: func(t *testing.T) string {
			name := endpoints.ObjectName("py")
			if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 10, MsgSize: pyMQSize}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { endpoints.RemoveMQ(name) })
			return name
		},
		goSend: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Sender[[]byte] {
			start()
			v, err := endpoints.OpenMQSender[[]byte](addr)
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		goRecv: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Receiver[[]byte] {
			start()
			v, err := endpoints.OpenMQReceiver[[]byte](addr)
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
	},
	{
		name: "sysvmq", limit: sysvLimit(),
		setup: func(t *testing.T) string {
			q, err := endpoints.CreateSysVQueue(endpoints.ObjectKey())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Remove() })
			return strconv.Itoa(q.ID())
		},
		goSend: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Sender[[]byte] {
			start()
			v, err := endpoints.SysVSender[[]byte](endpoints.SysVQueueByID(atoi(t, addr)))
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
		goRecv: func(t *testing.T, ctx context.Context, addr string, start func()) *ipcchan.Receiver[[]byte] {
			start()
			v, err := endpoints.SysVReceiver[[]byte](endpoints.SysVQueueByID(atoi(t, addr)), endpoints.MsgSelect{})
			if err != nil {
				t.Fatal(err)
			}
			return v
		},
	},
}

// TestPythonTransports: every transport but the pipe (TestPythonPipe), both
// ways: hundreds of messages from 0 bytes to the transport's limit, in
// order, with their tags (priorities, message types), then end of stream.
func TestPythonTransports(t *testing.T) {
	ipcchantest.CheckFDs(t)
	for _, tr := range pyTransports {
		t.Run(tr.name+"/GoToPython", func(t *testing.T) {
			ctx := pyCtx(t)
			addr := tr.setup(t)
			var p *pyProc
			tx := tr.goSend(t, ctx, addr, func() {
				p = startPy(t, pyArgs("recv", tr.name, addr, "--limit", strconv.Itoa(tr.limit)))
				p.expect("ready")
			})
			sendBytes(t, ctx, tx, tr.name, pyCount, tr.limit)
			checkBytesLines(t, p, tr.name, pyCount, tr.limit)
			p.wait()
		})
		t.Run(tr.name+"/PythonToGo", func(t *testing.T) {
			ctx := pyCtx(t)
			addr := tr.setup(t)
			var p *pyProc
			rx := tr.goRecv(t, ctx, addr, func() {
				p = startPy(t, pyArgs("send", tr.name, addr, "--limit", strconv.Itoa(tr.limit)))
			})
			defer rx.Close()
			p.expect("ready")
			recvBytes(t, ctx, rx, tr.name, pyCount, tr.limit)
			p.wait()
		})
	}
}

// TestPythonFingerprints: the Python package describes and fingerprints a
// dozen shapes exactly as ipcchan.Fingerprint and TypeDescription do for
// the same Go types, and lays out C structs as codec.CStructLayout does.
func TestPythonFingerprints(t *testing.T) {
	ipcchantest.CheckFDs(t)
	type reading struct {
		ID    int32
		Value float64
		Unit  string `c:"char[8]"`
	}
	type header struct {
		Kind uint8
		Len  uint16
		_    [1]byte
		Seq  uint64
	}
	type packet struct {
		Hdr   header
		Ok    bool
		Vals  [3]float32
		Items [2]struct {
			A int16
			B int8
		}
	}
	type node struct {
		Val  int
		Left *node
		Kids []node
	}
	types := map[string]reflect.Type{
		"bytes":      reflect.TypeFor[[]byte](),
		"string":     reflect.TypeFor[string](),
		"int64":      reflect.TypeFor[int64](),
		"uintptr":    reflect.TypeFor[uintptr](),
		"complex128": reflect.TypeFor[complex128](),
		"floats":     reflect.TypeFor[[4]float32](),
		"map":        reflect.TypeFor[map[string][]*int16](),
		"reading":    reflect.TypeFor[reading](),
		"header":     reflect.TypeFor[header](),
		"packet":     reflect.TypeFor[packet](),
		"any":        reflect.TypeFor[map[int]any](),
		"node":       reflect.TypeFor[node](),
		"matrix":     reflect.TypeFor[[2][3]uint8](),
		// The pool's envelopes (PROTOCOL.md §12) for J = struct{ N int64 }, R = string.
		"job": reflect.TypeFor[struct {
			ID  uint64
			Job struct{ N int64 }
		}](),
		"result": reflect.TypeFor[struct {
			ID    uint64
			Value string
			Err   string
			Ok    bool
		}](),
	}
	layouts := map[string]func() (codec.CLayout, error){
		"reading": codec.CStructLayout[reading],
		"header":  codec.CStructLayout[header],
		"packet":  codec.CStructLayout[packet],
	}
	p := startPyProgram(t, "py_fingerprint", nil)
	// The C layouts are the interpreter's ABI's: a 64-bit Python's are not
	// those of this test built for 386 (GOARCH=386 in .ci/run), where 8-byte
	// scalars are 4-aligned in structs and pointers are 4 bytes.
	goABI := fmt.Sprintf("abi %d %d", map[bool]int{true: 4, false: 8}[runtime.GOARCH == "386"], strconv.IntSize/8)
	sameABI := p.expect("abi ") == goABI
	if !sameABI {
		t.Logf("the Python interpreter's C ABI is not this test's (%s): C layouts not compared", goABI)
	}
	seen := 0
	for range len(types) + len(layouts) {
		line := p.line()
		fields := strings.Fields(line)
		if fields[0] == "layout" {
			if !sameABI {
				seen++
				continue
			}
			want, err := layouts[fields[1]]()
			if err != nil {
				t.Fatal(err)
			}
			var parts []string
			for _, f := range want.Fields {
				parts = append(parts, fmt.Sprintf("%s:%d:%d", f.Name, f.Offset, f.Size))
			}
			if got, want := strings.Join(fields[2:], " "), fmt.Sprintf("%d %s", want.Size, strings.Join(parts, ",")); got != want {
				t.Errorf("C layout of %s: Python %s, Go %s", fields[1], got, want)
			}
			seen++
			continue
		}
		// "name DESCRIPTION FINGERPRINT", the description holding spaces.
		name, rest, _ := strings.Cut(line, " ")
		i := strings.LastIndexByte(rest, ' ')
		typ, ok := types[name]
		if !ok || i < 0 {
			t.Fatalf("unexpected line %q", line)
		}
		if desc, fp := ipcchan.TypeDescription(typ), fmt.Sprintf("%016x", ipcchan.Fingerprint(typ)); rest[:i] != desc || rest[i+1:] != fp {
			t.Errorf("%s: Python %s, Go %s %s", name, rest, desc, fp)
		}
		seen++
	}
	p.wait()
	if seen != len(types)+len(layouts) {
		t.Fatalf("compared %d shapes, want %d", seen, len(types)+len(layouts))
	}
}

// TestPythonPriorities: a POSIX queue hands out the highest priority first
// and the end-of-stream marker (priority 0) last, whichever side sent them;
// a SysV receiver takes only the message type it selects, and ends at the
// marker of that type.
func TestPythonPriorities(t *testing.T) {
	ipcchantest.CheckFDs(t)
	posix := pyTransports[4]
	sysv := pyTransports[5]
	if posix.name != "posixmq" || sysv.name != "sysvmq" {
		t.Fatal("pyTransports changed order")
	}
	prios := []uint32{1, 9, 5, 9}
	wantOrder := []uint32{9, 9, 5, 1}
	t.Run("posixmq/GoToPython", func(t *testing.T) {
		ctx := pyCtx(t)
		addr := posix.setup(t)
		tx := posix.goSend(t, ctx, addr, func() {})
		for _, p := range prios {
			if err := tx.SendTag(ctx, p, pyPayload(int(p), int(p))); err != nil {
				t.Fatal(err)
			}
		}
		tx.Close()
		p := startPy(t, pyArgs("recv", "posixmq", addr))
		p.expect("ready")
		for _, prio := range wantOrder {
			sum := sha256.Sum256(pyPayload(int(prio), int(prio)))
			if got, want := p.line(), fmt.Sprintf("msg %d %d %x", prio, prio, sum); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		p.expect("eof")
		p.wait()
	})
	t.Run("posixmq/PythonToGo", func(t *testing.T) {
		ctx := pyCtx(t)
		addr := posix.setup(t)
		p := startPy(t, pyArgs("send", "posixmq", addr, "--mode", "priorities"))
		p.expect("ready")
		p.wait() // everything queued before Go reads
		rx := posix.goRecv(t, ctx, addr, func() {})
		defer rx.Close()
		for _, prio := range wantOrder {
			v, tag, err := rx.RecvTag(ctx)
			if err != nil || tag != prio || string(v) != string(pyPayload(int(prio), int(prio))) {
				t.Fatalf("got tag %d %q, %v; want tag %d", tag, v, err, prio)
			}
		}
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("%v, want io.EOF", err)
		}
	})
	t.Run("sysvmq/GoToPython", func(t *testing.T) {
		ctx := pyCtx(t)
		addr := sysv.setup(t)
		tx, err := endpoints.SysVSender[[]byte](endpoints.SysVQueueByID(atoi(t, addr)), ipcchan.WithTag(2))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			if err := tx.SendTag(ctx, pyTag("sysvmq", i), pyPayload(i, i)); err != nil {
				t.Fatal(err)
			}
		}
		tx.Close() // the marker has type 2
		p := startPy(t, pyArgs("recv", "sysvmq", addr, "--tag", "2"))
		p.expect("ready")
		for i := range 30 {
			if pyTag("sysvmq", i) != 2 {
				continue
			}
			sum := sha256.Sum256(pyPayload(i, i))
			if got, want := p.line(), fmt.Sprintf("msg 2 %d %x", i, sum); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		p.expect("eof")
		p.wait()
	})
	t.Run("sysvmq/PythonToGo", func(t *testing.T) {
		ctx := pyCtx(t)
		addr := sysv.setup(t)
		rx, err := endpoints.SysVReceiver[[]byte](endpoints.SysVQueueByID(atoi(t, addr)), endpoints.MsgSelect{Type: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		p := startPy(t, pyArgs("send", "sysvmq", addr, "--tag", "2", "--count", "30", "--limit", "100"))
		p.expect("ready")
		for i := range 30 {
			if pyTag("sysvmq", i) != 2 {
				continue
			}
			v, tag, err := rx.RecvTag(ctx)
			if want := pyPayload(i, pySize(i, 30, 100)); err != nil || tag != 2 || string(v) != string(want) {
				t.Fatalf("message %d: tag %d, %d bytes, %v; want tag 2, %d bytes", i, tag, len(v), err, len(want))
			}
		}
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("%v, want io.EOF", err)
		}
		p.wait()
	})
}

// pySampleOther has binary-le like pySample, but another shape: the
// handshake refuses it.
type pySampleOther struct {
	ID   uint32
	Temp float32
}

// TestPythonHandshakeRefused: a mismatched codec or element type is refused
// in both directions, and the refusal sticks — on a pipe (hello by
// default) and on a seqpacket socket with the handshake turned on.
func TestPythonHandshakeRefused(t *testing.T) {
	ipcchantest.CheckFDs(t)
	t.Run("GoToPython/codec", func(t *testing.T) {
		pyRefuses[[]byte](t, "string", `codec 'bytes'`)
	})
	t.Run("GoToPython/type", func(t *testing.T) {
		pyRefuses[pySampleOther](t, "binary-sample", "another element type")
	})
	t.Run("PythonToGo/codec", func(t *testing.T) {
		goRefuses[[]byte](t, "string")
	})
	t.Run("PythonToGo/type", func(t *testing.T) {
		goRefuses[pySampleOther](t, "binary-sample")
	})
	t.Run("seqpacket", func(t *testing.T) {
		ctx := pyCtx(t)
		addr := filepath.Join(t.TempDir(), "sock")
		l, err := endpoints.Listen[[]byte, []byte](ctx, "unixpacket", addr, ipcchan.WithHandshake(true))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		p := startPy(t, pyArgs("send", "seqpacket", addr, "--codec", "string", "--handshake", "on", "--count", "3", "--limit", "100"))
		c, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		p.expect("ready")
		for range 2 {
			if _, err := c.Recv(ctx); !errors.Is(err, ipcchan.ErrHandshake) {
				t.Fatalf("%v, want ErrHandshake", err)
			}
		}
		p.wait()

		p = startPy(t, pyArgs("recv", "seqpacket", addr, "--codec", "string", "--handshake", "on"))
		c2, err := l.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		p.expect("ready")
		// As in pyRefuses: the refusing peer may be gone before the value.
		if err := c2.Send(ctx, []byte("x")); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, ipcchan.ErrPeerGone) {
			t.Fatal(err)
		}
		c2.Sender().Close()
		p.expect("error HandshakeError: ipcchan: handshake refused: the peer encodes with codec 'bytes'")
		p.expect("error-again HandshakeError")
		p.wait()
	})
}

// pyRefuses sends a T from Go to a Python receiver with codec pyCodec and
// checks that it refuses with HandshakeError, for good.
func pyRefuses[T any](t *testing.T, pyCodec, why string) {
	ctx := pyCtx(t)
	tx, rx, err := endpoints.PipePair[T]()
	if err != nil {
		t.Fatal(err)
	}
	p := startPy(t, pyArgs("recv", "pipe", "in", "--codec", pyCodec), endpoints.Pass("in", rx))
	p.expect("ready")
	// The peer refuses the hello and may have gone before the value is
	// written: the Send may then find no reader (EPIPE), which is the
	// refusal seen from this side, not a failure of the test.
	var v T
	if err := tx.Send(ctx, v); err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, ipcchan.ErrPeerGone) {
		t.Fatal(err)
	}
	tx.Close()
	if l := p.expect("error HandshakeError: ipcchan: handshake refused: "); !strings.Contains(l, why) {
		t.Errorf("%q does not say %q", l, why)
	}
	p.expect("error-again HandshakeError")
	p.wait()
}

// goRefuses has a Go Receiver[T] refuse what a Python sender with codec
// pyCodec sends, for good.
func goRefuses[T any](t *testing.T, pyCodec string) {
	ctx := pyCtx(t)
	tx, rx, err := endpoints.PipePair[T]()
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	p := startPy(t, pyArgs("send", "pipe", "out", "--codec", pyCodec, "--count", "3", "--limit", "10"), endpoints.Pass("out", tx))
	p.expect("ready")
	for range 2 {
		if _, err := rx.Recv(ctx); !errors.Is(err, ipcchan.ErrHandshake) {
			t.Fatalf("%v, want ErrHandshake", err)
		}
	}
	p.wait()
}

// envGoChild makes the test binary a Go sender that the tests kill (see
// goChildMain): "TRANSPORT ADDR COUNT".
const envGoChild = "IPCCHAN_CLIENTS_PY_GO_SENDER"

func init() {
	if args, ok := os.LookupEnv(envGoChild); ok {
		if err := goChildMain(strings.Fields(args)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}

// goChildMain sends COUNT messages (pyPayload, pySize(limit 100), pyTag) on
// the transport without closing it — on a pipe it then writes the first
// 1000 bytes of a frame announcing 4000 — says "hanging" and waits to be
// killed.
func goChildMain(args []string) error {
	ctx := context.Background()
	transport, addr := args[0], args[1]
	count, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	var tx *ipcchan.Sender[[]byte]
	switch transport {
	case "pipe":
		tx, err = endpoints.InheritSender[[]byte](addr)
	case "unixgram":
		tx, err = endpoints.DialPacket[[]byte](ctx, "unixgram", addr)
	case "posixmq":
		tx, err = endpoints.OpenMQSender[[]byte](addr)
	case "sysvmq":
		var id int
		if id, err = strconv.Atoi(addr); err == nil {
			tx, err = endpoints.SysVSender[[]byte](endpoints.SysVQueueByID(id))
		}
	default:
		err = fmt.Errorf("unknown transport %q", transport)
	}
	if err != nil {
		return err
	}
	for i := range count {
		if err := tx.SendTag(ctx, pyTag(transport, i), pyPayload(i, pySize(i, count, 100))); err != nil {
			return err
		}
	}
	if err := tx.Flush(ctx); err != nil {
		return err
	}
	if transport == "pipe" {
		f, err := tx.File()
		if err != nil {
			return err
		}
		header := []byte{0, 0, 0x0f, 0xa0, 0, 0, 0, 0} // 4000 bytes, tag 0
		if _, err := f.Write(append(header, make([]byte, 1000)...)); err != nil {
			return err
		}
	}
	fmt.Println("hanging")
	time.Sleep(time.Hour)
	return nil
}

// goChild starts the test binary as a Go sender (goChildMain) with ends.
func goChild(t *testing.T, transport, addr string, count int, ends ...endpoints.Handed) *pyProc {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", envGoChild, transport, addr, count))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return startCmd(t, cmd, ends...)
}

// TestPythonKilledPeer: a peer killed mid-stream (SIGKILL) gives the
// survivor a clear error, never a clean end and never a hang, both ways: on
// a pipe (a FIFO, a Unix stream socket) the stream ends inside a frame (Go: io.ErrUnexpectedEOF; Python:
// TruncatedError); on transports with no kernel end of stream the
// survivor watches the peer's pid (Go: WatchPeer and ErrPeerGone; Python:
// watch_peer and PeerGoneError) after taking what it sent.
func TestPythonKilledPeer(t *testing.T) {
	ipcchantest.CheckFDs(t)
	const count = 8 // all queued while the receiver waits: a POSIX queue and a datagram socket hold 10
	for _, name := range []string{"pipe", "fifo", "unix", "unixgram", "posixmq", "sysvmq"} {
		var tr pyTransport
		for _, x := range pyTransports {
			if x.name == name {
				tr = x
			}
		}
		stream := name == "pipe" || name == "fifo" || name == "unix"
		t.Run(name+"/PythonKilled", func(t *testing.T) {
			ctx := pyCtx(t)
			mode := "hang"
			if stream {
				mode = "partial" // killed inside a frame
			}
			var rx *ipcchan.Receiver[[]byte]
			var p *pyProc
			args := []string{"--count", strconv.Itoa(count), "--limit", "100", "--mode", mode}
			if name == "pipe" {
				tx, r, err := endpoints.PipePair[[]byte]()
				if err != nil {
					t.Fatal(err)
				}
				rx = r
				p = startPy(t, pyArgs("send", "pipe", "out", args...), endpoints.Pass("out", tx))
			} else {
				addr := tr.setup(t)
				rx = tr.goRecv(t, ctx, addr, func() { p = startPy(t, pyArgs("send", name, addr, args...)) })
				if !stream {
					if err := rx.WatchPeer(p.cmd.Process.Pid); err != nil {
						t.Fatal(err)
					}
				}
			}
			defer rx.Close()
			p.expect("ready")
			p.expect("hanging")
			p.kill()
			for i := range count {
				v, tag, err := rx.RecvTag(ctx)
				if want := pyPayload(i, pySize(i, count, 100)); err != nil || tag != pyTag(name, i) || string(v) != string(want) {
					t.Fatalf("message %d: tag %d, %d bytes, %v", i, tag, len(v), err)
				}
			}
			_, err := rx.Recv(ctx)
			want := ipcchan.ErrPeerGone
			if stream {
				want = io.ErrUnexpectedEOF
			}
			if !errors.Is(err, want) {
				t.Fatalf("after the sender was killed: %v, want %v", err, want)
			}
		})
		if name == "fifo" || name == "unix" {
			continue // a Go sender killed on these is as on a pipe: the GoKilled case of the pipe
		}
		t.Run(name+"/GoKilled", func(t *testing.T) {
			addr := "out"
			var ends []endpoints.Handed
			var pyRx *pyProc
			startRx := func(addr string, ends ...endpoints.Handed) {
				pyRx = startPy(t, pyArgs("recv", name, addr, "--watch", "-1"), ends...)
				pyRx.expect("ready")
			}
			if name == "pipe" {
				tx, rx, err := endpoints.PipePair[[]byte]()
				if err != nil {
					t.Fatal(err)
				}
				startRx("in", endpoints.Pass("in", rx))
				ends = append(ends, endpoints.Pass("out", tx))
			} else {
				addr = tr.setup(t)
				startRx(addr)
			}
			g := goChild(t, name, addr, count, ends...)
			fmt.Fprintf(pyRx.stdin(), "%d\n", g.cmd.Process.Pid)
			g.expect("hanging")
			g.kill()
			for i := range count {
				b := pyPayload(i, pySize(i, count, 100))
				sum := sha256.Sum256(b)
				if got, want := pyRx.line(), fmt.Sprintf("msg %d %d %x", pyTag(name, i), len(b), sum); got != want {
					t.Fatalf("message %d: %q, want %q", i, got, want)
				}
			}
			if name == "pipe" {
				pyRx.expect("error TruncatedError: ")
				pyRx.expect("error-again none")
			} else {
				pyRx.expect(fmt.Sprintf("error PeerGoneError: ipcchan: the peer (pid %d) has exited", g.cmd.Process.Pid))
				pyRx.expect("error-again PeerGoneError")
			}
			pyRx.wait()
		})
	}
}

// rawEnd hands a plain descriptor to a child as an endpoint (endpoints.Pass).
type rawEnd struct{ f *os.File }

func (r rawEnd) File() (*os.File, error) {
	fd, err := unix.FcntlInt(r.f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), r.f.Name()), nil
}

func (r rawEnd) Close() error { return r.f.Close() }

func pyFrame(tag uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.BigEndian.AppendUint32(b, tag)
	return append(b, payload...)
}

// helloBytes is the hello of a []byte channel with the bytes codec.
var helloBytes = pyFrame(0x7FFFFFFF, []byte("IPCCHAN\x00\x00\x01\x05bytes\x27\xe5\xd9\x6a\xc8\xce\xdf\x7b"))

func msgLine(tag uint32, b []byte) string {
	sum := sha256.Sum256(b)
	return fmt.Sprintf("msg %d %d %x", tag, len(b), sum)
}

// expectLines checks the Python receiver's lines: each want is a prefix
// of the line.
func expectLines(p *pyProc, want ...string) {
	p.t.Helper()
	for _, w := range want {
		p.expect(w)
	}
	p.wait()
}

// TestPythonHostileInput: what Go writes that no ipcchan sender would — a
// header announcing 4 GiB, frames before a hello or hellos that are not,
// a stream cut inside a frame, records and datagrams shorter than their
// tag or over the limit, a marker's tag with a payload, look-alikes of the
// queue marker, SysV types above 32 bits — makes the Python receivers
// raise a clear error and skip the message (or refuse for good, for the
// handshake), never crash, never allocate what a header announces.
func TestPythonHostileInput(t *testing.T) {
	ipcchantest.CheckFDs(t)
	big := binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF)
	big = append(big, 0, 0, 0, 0)
	streams := []struct {
		name, limit string
		data        []byte
		want        []string
	}{
		{"4GiB after the hello", "", slices.Concat(helloBytes, big, make([]byte, 100)),
			[]string{"error MessageTooLarge: ", "error TruncatedError: ", "error-again none"}},
		{"4GiB before the hello", "", slices.Concat(big, make([]byte, 100)),
			[]string{"error HandshakeError: ipcchan: handshake refused: the first message is longer than any hello", "error-again HandshakeError"}},
		{"frame before the hello", "", slices.Concat(pyFrame(0, []byte("x")), helloBytes),
			[]string{"error HandshakeError: ipcchan: handshake refused: a message came before any hello", "error-again HandshakeError"}},
		{"malformed hello", "", pyFrame(0x7FFFFFFF, []byte("IPCCHAN\x00\x00\x01\xffbytes")),
			[]string{"error HandshakeError: ipcchan: handshake refused: the peer's hello is malformed", "error-again HandshakeError"}},
		{"other wire version", "", pyFrame(0x7FFFFFFF, slices.Concat([]byte("IPCCHAN\x00\x00\x02"), helloBytes[18:])),
			[]string{"error HandshakeError: ipcchan: handshake refused: the peer speaks wire version 2", "error-again HandshakeError"}},
		{"cut inside a frame", "", slices.Concat(helloBytes, pyFrame(1, []byte("ok")), pyFrame(0, make([]byte, 10))[:11]),
			[]string{msgLine(1, []byte("ok")), "error TruncatedError: ", "error-again none"}},
		{"cut inside a header", "", slices.Concat(helloBytes, pyFrame(0, nil)[:5]),
			[]string{"error TruncatedError: ", "error-again none"}},
		{"over the limit, then a message", "64", slices.Concat(helloBytes, pyFrame(0, make([]byte, 100)), pyFrame(5, []byte("ok"))),
			[]string{"error MessageTooLarge: ipcchan: a 100-byte frame exceeds the 64-byte limit", msgLine(5, []byte("ok")), "eof"}},
	}
	for _, c := range streams {
		t.Run("pipe/"+c.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			args := pyArgs("recv", "pipe", "in")
			if c.limit != "" {
				args = append(args, "--limit", c.limit)
			}
			p := startPy(t, args, endpoints.Pass("in", rawEnd{r}))
			p.expect("ready")
			if _, err := w.Write(c.data); err != nil {
				t.Fatal(err)
			}
			w.Close()
			expectLines(p, c.want...)
		})
	}
	t.Run("seqpacket", func(t *testing.T) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		mine := os.NewFile(uintptr(fds[0]), "seqpacket")
		p := startPy(t, pyArgs("recv", "pipe", "in", "--limit", "64"), endpoints.Pass("in", rawEnd{os.NewFile(uintptr(fds[1]), "seqpacket")}))
		p.expect("ready")
		for _, rec := range [][]byte{{}, {1, 2}, make([]byte, 4+200), slices.Concat([]byte{0, 0, 0, 5}, []byte("ok"))} {
			if _, err := mine.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		mine.Close()
		expectLines(p, "error CorruptError: ", "error CorruptError: ", "error MessageTooLarge: ", msgLine(5, []byte("ok")), "eof")
	})
	t.Run("unixgram", func(t *testing.T) {
		addr := filepath.Join(t.TempDir(), "sock")
		p := startPy(t, pyArgs("recv", "unixgram", addr, "--limit", "64"))
		p.expect("ready")
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		for _, d := range [][]byte{{0xff, 0xff}, {0xff, 0xff, 0xff, 0xff, 'x'}, make([]byte, 4+200),
			slices.Concat([]byte{0, 0, 0, 7}, []byte("four")), {0xff, 0xff, 0xff, 0xff}} {
			if err := unix.Sendto(fd, d, 0, &unix.SockaddrUnix{Name: addr}); err != nil {
				t.Fatal(err)
			}
		}
		expectLines(p, "error CorruptError: ", "error CorruptError: ", "error MessageTooLarge: ", msgLine(7, []byte("four")), "eof")
	})
	marker := []byte("\x00IPCCHAN-EOS\x00\x00\x00\x01")
	lookAlike := slices.Concat(marker[:15], []byte{3})
	escaped := slices.Concat(marker[:15], []byte{2}, []byte("payload"))
	t.Run("posixmq", func(t *testing.T) {
		ctx := pyCtx(t)
		addr := pyTransports[4].setup(t)
		p := startPy(t, pyArgs("recv", "posixmq", addr, "--limit", "64"))
		p.expect("ready")
		tx, err := endpoints.OpenMQSender[[]byte](addr, ipcchan.WithForeignPeer())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Close()
		for _, m := range []struct {
			prio uint32
			body []byte
		}{{2, lookAlike}, {2, marker}, {2, escaped}, {2, make([]byte, 100)}, {0, marker}} {
			if err := tx.SendTag(ctx, m.prio, m.body); err != nil {
				t.Fatal(err)
			}
		}
		// A marker at priority 2 is a value; an escape carries what follows.
		expectLines(p, msgLine(2, lookAlike), msgLine(2, marker), msgLine(2, []byte("payload")), "error MessageTooLarge: ", "eof")
	})
	t.Run("sysvmq", func(t *testing.T) {
		ctx := pyCtx(t)
		addr := pyTransports[5].setup(t)
		q := endpoints.SysVQueueByID(atoi(t, addr))
		p := startPy(t, pyArgs("recv", "sysvmq", addr, "--limit", "64"))
		p.expect("ready")
		var want []string
		if strconv.IntSize == 64 {
			if err := q.Send(ctx, 1<<40, []byte("wide")); err != nil {
				t.Fatal(err)
			}
			want = append(want, "error MsgTypeError: ipcchan: a SysV message of type 1099511627776")
		}
		for _, m := range []struct {
			typ  int64
			body []byte
		}{{1, make([]byte, 100)}, {1, escaped}, {2, lookAlike}, {3, marker}} {
			if err := q.Send(ctx, m.typ, m.body); err != nil {
				t.Fatal(err)
			}
		}
		want = append(want, "error MessageTooLarge: ", msgLine(1, []byte("payload")), msgLine(2, lookAlike), "eof")
		expectLines(p, want...)
	})
}

// pyWorkerJob is examples/pyworker's Job (and worker.py's).
type pyWorkerJob struct {
	N     int64
	Scale float64
}

// pyWorkerScript is the Python worker of examples/pyworker, which README.md's
// "From Python" section shows whole.
const pyWorkerScript = "../examples/pyworker/worker.py"

// TestPythonPoolWorker runs README.md's Python program (examples/pyworker's
// worker.py) as the workers of a proc.Start pool, unchanged Go pool code:
// every job is answered once with the exact result, a job the Python code
// raises on fails with the exception's text, and the workers exit when the
// pool closes.
func TestPythonPoolWorker(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := pyCtx(t)
	script, err := filepath.Abs(pyWorkerScript)
	if err != nil {
		t.Fatal(err)
	}
	py := pythonCommand(t, "py_peer") // its interpreter and PYTHONPATH, or a skip
	pool, err := proc.Start[pyWorkerJob, string](ctx, proc.Options{
		Workers: 2,
		Command: func(int) *exec.Cmd {
			cmd := exec.Command(py.Path, script)
			cmd.Env = py.Env
			cmd.Stderr = os.Stderr
			return cmd
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	const jobs = 100
	go func() {
		defer pool.Close()
		for i := range jobs {
			if err := pool.Submit(ctx, pyWorkerJob{N: int64(i - 3), Scale: 0.5}); err != nil {
				return
			}
		}
	}()
	seen := map[int64]bool{}
	for r := range pool.Results() {
		if seen[r.Job.N] {
			t.Errorf("job %d answered twice", r.Job.N)
		}
		seen[r.Job.N] = true
		switch {
		case r.Job.N < 0:
			if r.Err == nil || r.Err.Error() != fmt.Sprintf("cannot take %d items", r.Job.N) {
				t.Errorf("job %d: %q, %v; want the Python exception", r.Job.N, r.Value, r.Err)
			}
		case r.Err != nil:
			t.Errorf("job %d: %v", r.Job.N, r.Err)
		default:
			if want := fmt.Sprintf("%d items of 0.5: %g", r.Job.N, float64(r.Job.N)*0.5); r.Value != want {
				t.Errorf("job %d: %q, want %q", r.Job.N, r.Value, want)
			}
		}
	}
	if len(seen) != jobs {
		t.Fatalf("%d jobs answered, want %d", len(seen), jobs)
	}
	if st := pool.Stats(); st.Failed != 3 {
		t.Errorf("stats: %+v, want 3 failed jobs", st)
	}
}

// TestPythonREADME: the README's "From Python" section opens with exactly
// the program TestPythonPoolWorker runs, under 30 lines.
func TestPythonREADME(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile(pyWorkerScript)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## From Python\n")
	if !ok {
		t.Fatal(`README.md has no "## From Python" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	_, block, ok := strings.Cut(section, "```python\n")
	if !ok {
		t.Fatal(`the "From Python" section has no python block`)
	}
	block, _, _ = strings.Cut(block, "```\n")
	if block != string(prog) {
		t.Errorf("the README's first Python block is not %s byte for byte:\n%s", pyWorkerScript, block)
	}
	if n := strings.Count(block, "\n"); n >= 30 {
		t.Errorf("the README's Python program has %d lines, want under 30", n)
	}
}

// TestPythonPipelineStage: a Python program is a stage of a proc.Pipeline
// between Go's feed and drain (PROTOCOL.md §12), reading "in" to its end,
// writing "out", closing it and exiting 0.
func TestPythonPipelineStage(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := pyCtx(t)
	stage := pythonCommand(t, "py_stage")
	stage.Stderr = os.Stderr
	const n = 200
	var got []string
	err := proc.Pipeline(ctx, []*exec.Cmd{stage},
		func(ctx context.Context, tx *ipcchan.Sender[string]) error {
			for i := range n {
				if err := tx.Send(ctx, fmt.Sprintf("value %d", i)); err != nil {
					return err
				}
			}
			return nil
		},
		func(ctx context.Context, rx *ipcchan.Receiver[string]) error {
			for {
				v, err := rx.Recv(ctx)
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				got = append(got, v)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n {
		if i%3 != 0 { // the stage drops every third value
			want = append(want, fmt.Sprintf("VALUE %d", i))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %d values %q..., want %d", len(got), got[:min(3, len(got))], len(want))
	}
}

// TestPythonInheritedSysV: SysV queue ends handed to a Python program
// (IPCCHAN_FILES "name=sysvmq:ID:TYPE:FLAGS") keep their message type: a
// receiver takes only its type and ends at that type's marker, a sender
// sends with its type.
func TestPythonInheritedSysV(t *testing.T) {
	ipcchantest.CheckFDs(t)
	ctx := pyCtx(t)
	q := endpoints.SysVQueueByID(atoi(t, pyTransports[5].setup(t)))
	const n = 30
	t.Run("receiver", func(t *testing.T) {
		rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{Type: 2})
		if err != nil {
			t.Fatal(err)
		}
		p := startPy(t, pyArgs("recv", "inherited", "in"), endpoints.Pass("in", rx))
		p.expect("ready")
		tx, err := endpoints.SysVSender[[]byte](q, ipcchan.WithTag(2))
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := range n {
			tag := uint32(1 + i%3)
			if err := tx.SendTag(ctx, tag, pyPayload(i, i)); err != nil {
				t.Fatal(err)
			}
			if tag == 2 {
				want = append(want, msgLine(2, pyPayload(i, i)))
			}
		}
		tx.Close()
		expectLines(p, append(want, "eof")...)
	})
	t.Run("sender", func(t *testing.T) {
		tx, err := endpoints.SysVSender[[]byte](q, ipcchan.WithTag(7))
		if err != nil {
			t.Fatal(err)
		}
		p := startPy(t, pyArgs("send", "inherited", "out", "--count", strconv.Itoa(n), "--limit", "100"), endpoints.Pass("out", tx))
		p.expect("ready")
		rx, err := endpoints.SysVReceiver[[]byte](q, endpoints.MsgSelect{Type: 7})
		if err != nil {
			t.Fatal(err)
		}
		defer rx.Close()
		for i := range n {
			v, tag, err := rx.RecvTag(ctx)
			if want := pyPayload(i, pySize(i, n, 100)); err != nil || tag != 7 || string(v) != string(want) {
				t.Fatalf("message %d: tag %d, %d bytes, %v; want tag 7, %d bytes", i, tag, len(v), err, len(want))
			}
		}
		if _, err := rx.Recv(ctx); err != io.EOF {
			t.Fatalf("%v, want io.EOF", err)
		}
		p.wait()
	})
}
