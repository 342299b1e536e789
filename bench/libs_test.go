package bench

import (
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudwego/shmipc-go"
	ipc "github.com/james-barrow/golang-ipc"
	"golang.org/x/sys/unix"
)

// Other ways Go programs do the same job, each in its best plain use.

// --- an in-process Go channel: the floor, no process boundary at all.

type chanConn struct {
	to, from chan []byte
	done     chan struct{}
}

func dialChan(mode string, size int) *chanConn {
	c := &chanConn{to: make(chan []byte), from: make(chan []byte), done: make(chan struct{})}
	if mode == "sink" {
		c.to = make(chan []byte, 1024)
	}
	go func() {
		defer close(c.done)
		serve(mode, size, func(b []byte) (bool, error) {
			m, ok := <-c.to
			copy(b, m)
			return ok, nil
		}, func(b []byte) error { c.from <- b; return nil })
	}()
	return c
}

func (c *chanConn) send(b []byte) error { c.to <- b; return nil }
func (c *chanConn) recv(b []byte) error { copy(b, <-c.from); return nil }
func (c *chanConn) close() error        { close(c.to); <-c.done; return nil }
func (c *chanConn) pid() int            { return 0 }

// --- encoding/gob streams over two pipes or a Unix socket.

type gobConn struct {
	enc  *gob.Encoder
	dec  *gob.Decoder
	cmd  *exec.Cmd
	wc   io.Closer
	rest []io.Closer
	buf  []byte
}

func (c *gobConn) send(b []byte) error { return c.enc.Encode(b) }
func (c *gobConn) pid() int            { return c.cmd.Process.Pid }
func (c *gobConn) recv(b []byte) error {
	err := c.dec.Decode(&c.buf)
	copy(b, c.buf)
	return err
}
func (c *gobConn) close() error {
	c.wc.Close()
	err := c.cmd.Wait()
	for _, r := range c.rest {
		r.Close()
	}
	return err
}

// streamFiles returns this side's writer and reader and the child's two
// files (fd 3 to read, fd 4 to write): two pipes, or a socketpair.
func streamFiles(socket bool) (w io.WriteCloser, r io.ReadCloser, theirs []*os.File, err error) {
	if socket {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, nil, nil, err
		}
		mine := os.NewFile(uintptr(fds[0]), "socket")
		c, err := net.FileConn(mine)
		mine.Close()
		if err != nil {
			return nil, nil, nil, err
		}
		other := os.NewFile(uintptr(fds[1]), "socket")
		return halfCloser{c.(*net.UnixConn)}, c, []*os.File{other, other}, nil
	}
	r1, w1, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	return w1, r2, []*os.File{r1, w2}, nil
}

// halfCloser closes only the writing half of a Unix connection.
type halfCloser struct{ *net.UnixConn }

func (h halfCloser) Close() error { return h.CloseWrite() }

func startWith(peer, mode string, size int, files []*os.File) (*exec.Cmd, error) {
	cmd := child(peer, mode, size)
	cmd.ExtraFiles = files
	err := cmd.Start()
	for _, f := range files {
		f.Close()
	}
	return cmd, err
}

func dialGob(socket bool, mode string, size int) (*gobConn, error) {
	w, r, theirs, err := streamFiles(socket)
	if err != nil {
		return nil, err
	}
	cmd, err := startWith("gob", mode, size, theirs)
	if err != nil {
		return nil, err
	}
	return &gobConn{enc: gob.NewEncoder(w), dec: gob.NewDecoder(r), cmd: cmd, wc: w, rest: []io.Closer{r}}, nil
}

// --- net/rpc over the same: a request/reply exchange, round trips only.

type Echo struct{}

func (Echo) Echo(args []byte, reply *[]byte) error { *reply = args; return nil }

type rpcConn struct {
	client *rpc.Client
	cmd    *exec.Cmd
	reply  []byte
}

type rwc struct {
	io.Reader
	io.WriteCloser
	r io.Closer
}

func (c rwc) Close() error { c.WriteCloser.Close(); return c.r.Close() }

func dialRPC(socket bool, size int) (*rpcConn, error) {
	w, r, theirs, err := streamFiles(socket)
	if err != nil {
		return nil, err
	}
	cmd, err := startWith("rpc", "echo", size, theirs)
	if err != nil {
		return nil, err
	}
	return &rpcConn{client: rpc.NewClient(rwc{r, w, r}), cmd: cmd}, nil
}

func (c *rpcConn) pid() int            { return c.cmd.Process.Pid }
func (c *rpcConn) send(b []byte) error { return c.client.Call("Echo.Echo", b, &c.reply) }
func (c *rpcConn) recv(b []byte) error { copy(b, c.reply); return nil }
func (c *rpcConn) close() error {
	c.client.Close()
	return c.cmd.Wait()
}

// startListening starts a server child and waits for the byte it writes
// once it listens.
func startListening(cmd *exec.Cmd) error {
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if _, err := out.Read(make([]byte, 1)); err != nil {
		stopChild(cmd)
		return fmt.Errorf("the server child did not start listening: %w", err)
	}
	return nil
}

// stopChild kills a child a failed dial leaves behind and reaps it.
func stopChild(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}

// --- github.com/james-barrow/golang-ipc: a Unix socket under /tmp, its
// own framing, encryption turned off (it defaults to on) to compare like
// with like.

type golangIPCConn struct {
	c   *ipc.Client
	cmd *exec.Cmd
}

func dialGolangIPC(mode string, size int) (*golangIPCConn, error) {
	name := fmt.Sprintf("ipcchan-bench-%d-%d", os.Getpid(), nextID())
	cmd := child("golangipc", mode, size)
	cmd.Env = append(cmd.Env, "BENCH_IPC_NAME="+name)
	if err := startListening(cmd); err != nil {
		return nil, err
	}
	c, err := ipc.StartClient(name, &ipc.ClientConfig{Encryption: false, Timeout: 5})
	if err != nil {
		stopChild(cmd)
		return nil, err
	}
	// The client reports its progress as messages that must be read
	// before it goes on.
	for {
		m, err := c.Read()
		if err == nil && m.Err != nil {
			err = m.Err
		}
		if err != nil {
			c.Close()
			stopChild(cmd)
			return nil, fmt.Errorf("golang-ipc: %w", err)
		}
		if m.MsgType == -1 && m.Status == "Connected" {
			break
		}
	}
	return &golangIPCConn{c: c, cmd: cmd}, nil
}

func (g *golangIPCConn) pid() int { return g.cmd.Process.Pid }

func (g *golangIPCConn) send(b []byte) error {
	return g.c.Write(1, b)
}

func (g *golangIPCConn) recv(b []byte) error {
	for {
		m, err := g.c.Read()
		if err != nil {
			return err
		}
		if m.MsgType > 0 {
			copy(b, m.Data)
			return nil
		}
	}
}

func (g *golangIPCConn) close() error {
	g.c.Write(2, nil) // type 2: done
	err := g.cmd.Wait()
	g.c.Close()
	return err
}

// --- github.com/cloudwego/shmipc-go: shared-memory buffers and queues set
// up over a Unix socket, memfd mappings.

type shmipcConn struct {
	sm     *shmipc.SessionManager
	stream *shmipc.Stream
	cmd    *exec.Cmd
	dir    string
}

func shmipcConfig() *shmipc.Config {
	c := shmipc.DefaultConfig()
	c.MemMapType = shmipc.MemMapTypeMemFd
	c.ShareMemoryPathPrefix = fmt.Sprintf("/dev/shm/ipcchan-%d-shmipc", os.Getpid())
	c.QueuePath = c.ShareMemoryPathPrefix + "-queue"
	c.LogOutput = io.Discard
	return c
}

func dialShmipc(mode string, size int) (*shmipcConn, error) {
	dir, err := os.MkdirTemp("", "ipcchan-bench-shmipc-")
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "s")
	cmd := child("shmipc", mode, size)
	cmd.Env = append(cmd.Env, "BENCH_SOCK="+sock)
	if err := startListening(cmd); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	conf := shmipc.DefaultSessionManagerConfig()
	conf.Config = shmipcConfig()
	conf.Network, conf.Address = "unix", sock
	sm, err := shmipc.NewSessionManager(conf)
	if err != nil {
		stopChild(cmd)
		os.RemoveAll(dir)
		return nil, err
	}
	stream, err := sm.GetStream()
	if err != nil {
		sm.Close()
		stopChild(cmd)
		os.RemoveAll(dir)
		return nil, err
	}
	return &shmipcConn{sm: sm, stream: stream, cmd: cmd, dir: dir}, nil
}

func shmipcWrite(s *shmipc.Stream, b []byte) error {
	if _, err := s.BufferWriter().WriteBytes(b); err != nil {
		return err
	}
	for {
		err := s.Flush(false)
		if !errors.Is(err, shmipc.ErrQueueFull) {
			return err
		}
		time.Sleep(time.Microsecond)
	}
}

func (c *shmipcConn) pid() int            { return c.cmd.Process.Pid }
func (c *shmipcConn) send(b []byte) error { return shmipcWrite(c.stream, b) }

func (c *shmipcConn) recv(b []byte) error {
	r := c.stream.BufferReader()
	data, err := r.ReadBytes(len(b))
	copy(b, data)
	r.ReleasePreviousRead()
	return err
}

func (c *shmipcConn) close() error {
	c.stream.Close()
	err := c.cmd.Wait()
	c.sm.Close()
	os.RemoveAll(c.dir)
	return err
}

func init() {
	shmipc.SetLogLevel(5) // its levelNoPrint: the benchmark output stays readable
	gob.Register([]byte(nil))
	peers["gob"] = func(mode string, size int) error {
		in, out := os.NewFile(3, "in"), os.NewFile(4, "out")
		dec, enc := gob.NewDecoder(in), gob.NewEncoder(out)
		var msg []byte
		return serve(mode, size, func(b []byte) (bool, error) {
			if err := dec.Decode(&msg); err != nil {
				return false, ignoreEOF(err)
			}
			copy(b, msg)
			return true, nil
		}, func(b []byte) error { return enc.Encode(b) })
	}
	peers["rpc"] = func(string, int) error {
		srv := rpc.NewServer()
		if err := srv.Register(Echo{}); err != nil {
			return err
		}
		in, out := os.NewFile(3, "in"), os.NewFile(4, "out")
		srv.ServeConn(rwc{in, out, in})
		return nil
	}
	peers["golangipc"] = func(mode string, size int) error {
		s, err := ipc.StartServer(os.Getenv("BENCH_IPC_NAME"), &ipc.ServerConfig{Encryption: false, MaxMsgSize: 1 << 20})
		if err != nil {
			return err
		}
		defer s.Close()
		os.Stdout.Write([]byte{1})
		return serve(mode, size, func(b []byte) (bool, error) {
			for {
				m, err := s.Read()
				if err != nil {
					return false, err
				}
				switch m.MsgType {
				case 1:
					copy(b, m.Data)
					return true, nil
				case 2:
					return false, nil
				}
			}
		}, func(b []byte) error { return s.Write(1, b) })
	}
	peers["shmipc"] = func(mode string, size int) error {
		ln, err := net.Listen("unix", os.Getenv("BENCH_SOCK"))
		if err != nil {
			return err
		}
		defer ln.Close()
		os.Stdout.Write([]byte{1})
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		s, err := shmipc.Server(conn, shmipcConfig())
		if err != nil {
			return err
		}
		defer s.Close()
		stream, err := s.AcceptStream()
		if err != nil {
			return err
		}
		defer stream.Close()
		r := stream.BufferReader()
		return serve(mode, size, func(b []byte) (bool, error) {
			data, err := r.ReadBytes(len(b))
			if err != nil {
				if errors.Is(err, shmipc.ErrEndOfStream) || errors.Is(err, shmipc.ErrStreamClosed) {
					return false, nil
				}
				return false, err
			}
			copy(b, data)
			r.ReleasePreviousRead()
			return true, nil
		}, func(b []byte) error { return shmipcWrite(stream, b) })
	}
}

// A library's dial, for one mode and size.
type lib struct {
	name   string
	oneWay bool
	dial   func(mode string, size int) (conn, error)
}

var libs = []lib{
	{"chan", true, func(m string, n int) (conn, error) { return dialChan(m, n), nil }},
	{"gob-pipe", true, func(m string, n int) (conn, error) { return dialGob(false, m, n) }},
	{"gob-unix", true, func(m string, n int) (conn, error) { return dialGob(true, m, n) }},
	{"netrpc-pipe", false, func(m string, n int) (conn, error) { return dialRPC(false, n) }},
	{"netrpc-unix", false, func(m string, n int) (conn, error) { return dialRPC(true, n) }},
	{"golang-ipc", true, func(m string, n int) (conn, error) { return dialGolangIPC(m, n) }},
	{"shmipc-go", true, func(m string, n int) (conn, error) { return dialShmipc(m, n) }},
}

func BenchmarkLibRoundTrip(b *testing.B) {
	for _, l := range libs {
		for _, s := range roundTripSizes {
			b.Run(l.name+"/"+s.name, func(b *testing.B) {
				c, err := l.dial("echo", s.n)
				if err != nil {
					b.Fatal(err)
				}
				roundTrip(b, c, s.n)
			})
		}
	}
}

func BenchmarkLibOneWay(b *testing.B) {
	for _, l := range libs {
		if !l.oneWay {
			continue
		}
		for _, s := range sizes {
			b.Run(l.name+"/"+s.name, func(b *testing.B) {
				c, err := l.dial("sink", s.n)
				if err != nil {
					b.Fatal(err)
				}
				oneWay(b, c, s.n)
			})
		}
	}
}
