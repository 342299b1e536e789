package proc_test

import (
	"bufio"
	"context"
	"encoding/gob"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/ipcchan/go/proc"
)

// Tiny is a 64-byte job and result (exported for net/rpc).
type Tiny struct{ B [64]byte }

const benchWorkers = 2

// BenchmarkPoolTinyJobs measures jobs per second through a pool of worker
// processes for 64-byte jobs and results: proc's pool over pipes and over
// shared-memory rings, and in the same run the same pool written with
// os/exec and encoding/gob over the workers' stdin and stdout, and with
// net/rpc over a Unix socket per worker.
func BenchmarkPoolTinyJobs(b *testing.B) {
	for _, tr := range []struct {
		name string
		t    proc.Transport
	}{{"ipcchan-pipes", proc.Pipes}, {"ipcchan-rings", proc.Rings}} {
		b.Run(tr.name, func(b *testing.B) {
			ctx := context.Background()
			p, err := proc.Start[Tiny, Tiny](ctx, proc.Options{Workers: benchWorkers, Command: workerCmd("echo-Tiny", nil), Transport: tr.t, InFlight: 64})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			go func() {
				for range b.N {
					if err := p.Submit(ctx, Tiny{}); err != nil {
						b.Error(err)
						break
					}
				}
				p.Close()
			}()
			n := 0
			for r := range p.Results() {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
				n++
			}
			b.StopTimer()
			if n != b.N {
				b.Fatalf("%d results for %d jobs", n, b.N)
			}
		})
	}
	b.Run("gob-stdio", benchGobPool)
	b.Run("net-rpc-unix", benchRPCPool)
}

// benchGobPool is the same pool by hand: gob-encoded jobs to each worker's
// stdin, results from its stdout, one writer and one reader goroutine per
// worker.
func benchGobPool(b *testing.B) {
	type gobWorker struct {
		cmd *exec.Cmd
		enc *gob.Encoder
		w   *bufio.Writer
		in  io.WriteCloser
		dec *gob.Decoder
	}
	var ws []*gobWorker
	for range benchWorkers {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "IPCCHAN_TEST_ROLE=gob-worker")
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriter(in)
		ws = append(ws, &gobWorker{cmd: cmd, enc: gob.NewEncoder(w), w: w, in: in, dec: gob.NewDecoder(bufio.NewReader(out))})
	}
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	for i, w := range ws {
		share := b.N / benchWorkers
		if i == 0 {
			share += b.N % benchWorkers
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range share {
				if err := w.enc.Encode(Tiny{}); err != nil {
					b.Error(err)
					return
				}
			}
			w.w.Flush()
			w.in.Close()
		}()
		go func() {
			defer wg.Done()
			var r Tiny
			for range share {
				if err := w.dec.Decode(&r); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	for _, w := range ws {
		w.cmd.Wait()
	}
}

// Echo is the net/rpc service of the benchmark's workers.
type Echo struct{}

// Tiny answers a Tiny job with itself.
func (Echo) Tiny(job Tiny, reply *Tiny) error { *reply = job; return nil }

// benchRPCPool is the pool with net/rpc: each worker serves a Unix socket;
// the parent keeps many calls in flight on each.
func benchRPCPool(b *testing.B) {
	dir := b.TempDir()
	var clients []*rpc.Client
	var cmds []*exec.Cmd
	for i := range benchWorkers {
		path := filepath.Join(dir, "w"+strconv.Itoa(i))
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "IPCCHAN_TEST_ROLE=rpc-worker", "IPCCHAN_TEST_SOCKET="+path)
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		bufio.NewReader(out).ReadString('\n') // "listening"
		c, err := rpc.Dial("unix", path)
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		cmds = append(cmds, cmd)
	}
	b.ReportAllocs()
	b.ResetTimer()
	done := make(chan *rpc.Call, 128)
	inflight := 0
	for i := range b.N {
		if inflight == cap(done) {
			if c := <-done; c.Error != nil {
				b.Fatal(c.Error)
			}
			inflight--
		}
		clients[i%benchWorkers].Go("Echo.Tiny", Tiny{}, new(Tiny), done)
		inflight++
	}
	for ; inflight > 0; inflight-- {
		if c := <-done; c.Error != nil {
			b.Fatal(c.Error)
		}
	}
	b.StopTimer()
	for i, c := range clients {
		c.Close()
		cmds[i].Process.Kill()
		cmds[i].Wait()
	}
}

// benchChild plays the benchmark's hand-written workers.
func benchChild(role string) error {
	switch role {
	case "gob-worker":
		dec := gob.NewDecoder(bufio.NewReader(os.Stdin))
		w := bufio.NewWriter(os.Stdout)
		enc := gob.NewEncoder(w)
		var job Tiny
		for {
			if err := dec.Decode(&job); err != nil {
				w.Flush()
				if err == io.EOF {
					return nil
				}
				return err
			}
			if err := enc.Encode(job); err != nil {
				return err
			}
			// Flush when no more input is buffered: answers leave while
			// the parent may be waiting for them.
			w.Flush()
		}
	case "rpc-worker":
		l, err := net.Listen("unix", os.Getenv("IPCCHAN_TEST_SOCKET"))
		if err != nil {
			return err
		}
		srv := rpc.NewServer()
		srv.Register(Echo{})
		os.Stdout.WriteString("listening\n")
		conn, err := l.Accept()
		if err != nil {
			return err
		}
		srv.ServeConn(conn)
		return nil
	}
	return nil
}
