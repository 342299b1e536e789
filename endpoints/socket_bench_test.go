package endpoints_test

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/ipcchan/go/endpoints"
)

// socketNets are the connection networks the socket benchmarks cover.
var socketNets = []string{"unix", "unixpacket", "tcp"}

func benchAddr(b *testing.B, network string) string {
	if network == "tcp" {
		return "127.0.0.1:0"
	}
	return filepath.Join(b.TempDir(), "s")
}

// connPair returns a connected pair of Conns on network.
func connPair(b *testing.B, network string) (mine, theirs *endpoints.Conn[[]byte, []byte]) {
	ctx := context.Background()
	l, err := endpoints.Listen[[]byte, []byte](ctx, network, benchAddr(b, network))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if mine, err = endpoints.Dial[[]byte, []byte](ctx, network, l.Addr()); err != nil {
		b.Fatal(err)
	}
	if theirs, err = l.Accept(ctx); err != nil {
		b.Fatal(err)
	}
	return mine, theirs // the caller closes mine before the child is waited for
}

// rawConnPair returns a connected pair of plain net.Conns on network.
func rawConnPair(b *testing.B, network string) (mine, theirs net.Conn) {
	l, err := net.Listen(network, benchAddr(b, network))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if mine, err = net.Dial(network, l.Addr().String()); err != nil {
		b.Fatal(err)
	}
	if theirs, err = l.Accept(); err != nil {
		b.Fatal(err)
	}
	return mine, theirs // the caller closes mine before the child is waited for
}

// startRawConnChild hands theirs to role as fd 3.
func startRawConnChild(b *testing.B, role string, theirs net.Conn, size int) *exec.Cmd {
	f, err := theirs.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		b.Fatal(err)
	}
	theirs.Close()
	cmd := helperCmd(b, role, "IPCCHAN_SIZE="+strconv.Itoa(size))
	cmd.ExtraFiles = []*os.File{f}
	err = cmd.Start()
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Wait() })
	return cmd
}

func init() {
	childRoles["conn-echo-bytes"] = func() error {
		c, err := endpoints.InheritConn[[]byte, []byte]("conn")
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := context.Background()
		var buf []byte
		for {
			if err := c.Receiver().RecvInto(ctx, &buf); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			if err := c.Send(ctx, buf); err != nil {
				return err
			}
		}
	}
	childRoles["conn-sink"] = func() error {
		c, err := endpoints.InheritConn[[]byte, []byte]("conn")
		if err != nil {
			return err
		}
		defer c.Close()
		ctx := context.Background()
		var buf []byte
		n := 0
		for {
			err := c.Receiver().RecvInto(ctx, &buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			n++
		}
		return c.Send(ctx, []byte(strconv.Itoa(n)))
	}
	// raw-conn-echo echoes messages of IPCCHAN_SIZE bytes on the socket at
	// fd 3 with plain reads and writes (one read per record on seqpacket).
	childRoles["raw-conn-echo"] = func() error {
		c, err := net.FileConn(os.NewFile(3, "conn"))
		if err != nil {
			return err
		}
		defer c.Close()
		size, _ := strconv.Atoi(os.Getenv("IPCCHAN_SIZE"))
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
	}
	// raw-conn-sink reads until end of stream and writes the byte count.
	childRoles["raw-conn-sink"] = func() error {
		c, err := net.FileConn(os.NewFile(3, "conn"))
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, 64<<10)
		total := 0
		for {
			n, err := c.Read(buf)
			total += n
			if err == io.EOF || (err == nil && n == 0) {
				break
			}
			if err != nil {
				return err
			}
		}
		_, err = c.Write([]byte(strconv.Itoa(total)))
		return err
	}
}

// BenchmarkSocketRoundTrip: a message to a child and back over one
// connection, through ipcchan and with a plain net.Conn in the same run.
func BenchmarkSocketRoundTrip(b *testing.B) {
	for _, network := range socketNets {
		for _, size := range benchSizes {
			b.Run(network+"/ipcchan/"+sizeName(size), func(b *testing.B) {
				mine, theirs := connPair(b, network)
				p := startHelper(b, "conn-echo-bytes", nil, endpoints.Pass("conn", theirs))
				defer mine.Close()
				ctx := context.Background()
				msg := make([]byte, size)
				var buf []byte
				measureRoundTrips(b, size, p.cmd.Process.Pid, func() {
					if err := mine.Send(ctx, msg); err != nil {
						b.Fatal(err)
					}
					if err := mine.Receiver().RecvInto(ctx, &buf); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run(network+"/raw/"+sizeName(size), func(b *testing.B) {
				mine, theirs := rawConnPair(b, network)
				cmd := startRawConnChild(b, "raw-conn-echo", theirs, size)
				defer mine.Close()
				msg := make([]byte, size)
				buf := make([]byte, size)
				measureRoundTrips(b, size, cmd.Process.Pid, func() {
					if _, err := mine.Write(msg); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(mine, buf); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}

// BenchmarkSocketThroughput: one-way messages to a child that reads them
// all, through ipcchan and with one plain write per message.
func BenchmarkSocketThroughput(b *testing.B) {
	for _, network := range socketNets {
		for _, size := range benchSizes {
			b.Run(network+"/ipcchan/"+sizeName(size), func(b *testing.B) {
				mine, theirs := connPair(b, network)
				startHelper(b, "conn-sink", nil, endpoints.Pass("conn", theirs))
				defer mine.Close()
				sendAllAndCount(b, mine.Sender(), mine.Receiver(), size)
			})
			b.Run(network+"/raw/"+sizeName(size), func(b *testing.B) {
				mine, theirs := rawConnPair(b, network)
				startRawConnChild(b, "raw-conn-sink", theirs, size)
				defer mine.Close()
				msg := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := mine.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				closeWrite(mine)
				got, err := io.ReadAll(mine)
				b.StopTimer()
				if err != nil || string(got) != strconv.Itoa(b.N*size) {
					b.Fatalf("child received %s bytes (%v), want %d", got, err, b.N*size)
				}
			})
		}
	}
}

func closeWrite(c net.Conn) {
	switch c := c.(type) {
	case *net.UnixConn:
		c.CloseWrite()
	case *net.TCPConn:
		c.CloseWrite()
	}
}
