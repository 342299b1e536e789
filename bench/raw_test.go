package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/sys"
)

// The baselines: the same exchanges on plain system calls, blocking, with
// nothing between the program and the kernel — what an endpoint's cost is
// measured against.

// A rawConn moves messages with two functions and waits for its child.
type rawConn struct {
	sendFn func([]byte) error
	recvFn func([]byte) error
	cmd    *exec.Cmd
	done   func() // tells the child to finish
	after  func() // releases this side once the child is gone
}

func (c *rawConn) send(msg []byte) error { return c.sendFn(msg) }
func (c *rawConn) recv(buf []byte) error { return c.recvFn(buf) }
func (c *rawConn) pid() int              { return c.cmd.Process.Pid }
func (c *rawConn) close() error {
	if c.done != nil {
		c.done()
	}
	err := c.cmd.Wait()
	if c.after != nil {
		c.after()
	}
	return err
}

func writeFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// readFull reads len(b) bytes; it returns false at a clean end of file.
func readFull(fd int, b []byte) (bool, error) {
	for got := 0; got < len(b); {
		n, err := unix.Read(fd, b[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, err
		}
		if n == 0 {
			if got == 0 {
				return false, nil
			}
			return false, fmt.Errorf("end of file inside a message")
		}
		got += n
	}
	return true, nil
}

func recvFull(fd int) func([]byte) error {
	return func(b []byte) error {
		ok, err := readFull(fd, b)
		if err == nil && !ok {
			err = fmt.Errorf("end of file")
		}
		return err
	}
}

// startRaw starts peer with the descriptors as fds 3, 4, ... and closes
// this process's copies of them.
func startRaw(peer, mode string, size int, env []string, fds ...int) (*exec.Cmd, error) {
	cmd := child(peer, mode, size)
	cmd.Env = append(cmd.Env, env...)
	for _, fd := range fds {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(fd), "raw"))
	}
	err := cmd.Start()
	for _, f := range cmd.ExtraFiles {
		f.Close()
	}
	return cmd, err
}

// dialRawStream: two pipes, or one socketpair, read and written blocking.
func dialRawStream(socket bool, mode string, size int) (*rawConn, error) {
	var mine [2]int // write, read
	var theirs []int
	if socket {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		mine = [2]int{fds[0], fds[0]}
		theirs = []int{fds[1], fds[1]}
	} else {
		var a, b [2]int
		if err := unix.Pipe2(a[:], unix.O_CLOEXEC); err != nil {
			return nil, err
		}
		if err := unix.Pipe2(b[:], unix.O_CLOEXEC); err != nil {
			return nil, err
		}
		mine = [2]int{a[1], b[0]}
		theirs = []int{a[0], b[1]}
	}
	peer := "rawpipe"
	fds := theirs
	if socket {
		peer, fds = "rawsocket", theirs[:1]
	}
	cmd, err := startRaw(peer, mode, size, nil, fds...)
	if err != nil {
		return nil, err
	}
	return &rawConn{
		sendFn: func(b []byte) error { return writeFull(mine[0], b) },
		recvFn: recvFull(mine[1]),
		cmd:    cmd,
		done: func() {
			if socket {
				unix.Shutdown(mine[0], unix.SHUT_WR)
			} else {
				unix.Close(mine[0])
			}
		},
		after: func() {
			unix.Close(mine[1])
		},
	}, nil
}

// dialRawMQ: two POSIX queues, unlinked once open, mq_timedsend and
// mq_timedreceive blocking.
func dialRawMQ(mode string, size int) (*rawConn, error) {
	var q [2]int
	for i := range q {
		name := endpoints.ObjectName("bench")[1:]
		fd, err := sys.MqOpen(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL, 0o600, &sys.MqAttr{Maxmsg: 10, Msgsize: 8192})
		if err != nil {
			return nil, err
		}
		sys.MqUnlink(name)
		q[i] = fd
	}
	theirs0, _ := unix.Dup(q[0])
	theirs1, _ := unix.Dup(q[1])
	cmd, err := startRaw("rawmq", mode, size, nil, theirs0, theirs1)
	if err != nil {
		return nil, err
	}
	scratch := make([]byte, 8192)
	return &rawConn{
		sendFn: func(b []byte) error { return retry(func() error { return sys.MqTimedsend(q[0], b, 0, nil) }) },
		recvFn: func(b []byte) error {
			return retry(func() error { _, _, err := sys.MqTimedreceive(q[1], scratch, nil); copy(b, scratch); return err })
		},
		cmd: cmd,
		done: func() {
			sys.MqTimedsend(q[0], nil, 0, nil) // an empty message ends the child
			unix.Close(q[0])
			unix.Close(q[1])
		},
	}, nil
}

func retry(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}

// dialRawMsg: two SysV queues, msgsnd and msgrcv blocking.
func dialRawMsg(mode string, size int) (*rawConn, error) {
	var q [2]int
	for i := range q {
		id, err := sys.Msgget(0, unix.IPC_CREAT|0o600)
		if err != nil {
			return nil, err
		}
		q[i] = id
	}
	cmd, err := startRaw("rawmsg", mode, size, []string{"BENCH_Q0=" + strconv.Itoa(q[0]), "BENCH_Q1=" + strconv.Itoa(q[1])})
	if err != nil {
		return nil, err
	}
	out, in := make([]byte, 8+8192), make([]byte, 8+8192)
	binary.NativeEndian.PutUint64(out, 1)
	return &rawConn{
		sendFn: func(b []byte) error {
			n := copy(out[8:], b)
			return retry(func() error { return sys.Msgsnd(q[0], out[:8+n], 0) })
		},
		recvFn: func(b []byte) error {
			return retry(func() error { _, err := sys.Msgrcv(q[1], in, 0, 0); copy(b, in[8:]); return err })
		},
		cmd: cmd,
		done: func() {
			sys.Msgsnd(q[0], out[:8], 0) // an empty message ends the child
		},
	}, nil
}

// rawMsgQueues returns, in the child, the two SysV queues dialRawMsg made.
func rawMsgQueues() (int, int) {
	a, _ := strconv.Atoi(os.Getenv("BENCH_Q0"))
	b, _ := strconv.Atoi(os.Getenv("BENCH_Q1"))
	return a, b
}

// The shared-memory ping-pong: a memfd page, two sequence words each
// side spins on, and the message copied in and out — the floor any
// shared-memory transport can reach.
type shmPage struct {
	req  atomic.Uint64
	_    [56]byte
	resp atomic.Uint64
	_    [56]byte
	data [64 << 10]byte
}

func dialRawShm(size int) (*rawConn, error) {
	fd, err := unix.MemfdCreate("bench", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.Ftruncate(fd, int64(unsafe.Sizeof(shmPage{}))); err != nil {
		return nil, err
	}
	mem, err := unix.Mmap(fd, 0, int(unsafe.Sizeof(shmPage{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, err
	}
	p := (*shmPage)(unsafe.Pointer(&mem[0]))
	cmd, err := startRaw("rawshm", "echo", size, nil, fd)
	if err != nil {
		return nil, err
	}
	var seq uint64
	return &rawConn{
		sendFn: func(b []byte) error {
			copy(p.data[:], b)
			seq++
			p.req.Store(seq)
			return nil
		},
		recvFn: func(b []byte) error {
			for p.resp.Load() != seq {
			}
			copy(b, p.data[:len(b)])
			return nil
		},
		cmd:  cmd,
		done: func() { p.req.Store(^uint64(0)) },
		after: func() {
			unix.Munmap(mem)
			unix.Close(fd)
		},
	}, nil
}

// The shared-memory one-way ring: the simplest correct single-producer
// single-consumer ring over a memfd — a head index (written by the
// sender) and a tail index (written by the receiver) on cache lines of
// their own, fixed-size slots, both sides spinning, no framing, no locks.
// Each side keeps its own index in a register and rereads the other's
// only when the ring looks full (sender) or empty (receiver), so the
// indices' cache lines move between the cores no more than they must.
// The receiver copies every slot out, as ipcchan's receiver does. It has
// the capacity of the ipcchan ring it is compared with (1 MiB of slots):
// the floor for ipcchan's ring one way.
type shmRing struct {
	head atomic.Uint64 // messages published by the sender
	_    [56]byte
	tail atomic.Uint64 // messages taken by the receiver
	_    [56]byte
	ack  atomic.Uint64 // batches acknowledged by the receiver; ^0 ends it
	_    [56]byte
}

// shmRingBytes is the ring's slot space, as ipcchan's ring benchmark's.
const shmRingBytes = 1 << 20

// shmRingSlot is the slot size for messages of size bytes (the count
// that starts a batch takes a slot of its own).
func shmRingSlot(size int) int { return max(size, 8) }

// mapShmRing maps the ring on fd: its indices, and its slots as one
// slice.
func mapShmRing(fd, size int) (mem []byte, r *shmRing, slots []byte, err error) {
	hdr := int(unsafe.Sizeof(shmRing{}))
	mem, err = unix.Mmap(fd, 0, hdr+shmRingBytes, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, nil, err
	}
	n := shmRingBytes / shmRingSlot(size) * shmRingSlot(size)
	return mem, (*shmRing)(unsafe.Pointer(&mem[0])), mem[hdr : hdr+n], nil
}

// yieldEvery gives the CPU up to the kernel's other runnable threads
// once every 1024 turns of a spin: on a loaded machine a spinning side
// whose peer is not running would otherwise burn its whole time slice
// before the peer can publish anything. On an idle core sched_yield
// returns at once.
func yieldEvery(spin int) {
	if spin&1023 == 0 {
		unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	}
}

func dialRawShmRing(size int) (*rawConn, error) {
	fd, err := unix.MemfdCreate("bench", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.Ftruncate(fd, int64(unsafe.Sizeof(shmRing{}))+shmRingBytes); err != nil {
		unix.Close(fd)
		return nil, err
	}
	mem, r, slots, err := mapShmRing(fd, size)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	theirs, err := unix.Dup(fd)
	if err != nil {
		unix.Munmap(mem)
		unix.Close(fd)
		return nil, err
	}
	cmd, err := startRaw("rawshmring", "sink", size, nil, theirs)
	if err != nil {
		unix.Munmap(mem)
		unix.Close(fd)
		return nil, err
	}
	slot := shmRingSlot(size)
	n := uint64(len(slots) / slot)
	var head, tail, acks uint64 // head: ours; tail: the receiver's, as last seen
	off := 0                    // head's slot
	return &rawConn{
		sendFn: func(b []byte) error {
			for spin := 1; head-tail == n; spin++ {
				tail = r.tail.Load()
				yieldEvery(spin)
			}
			copy(slots[off:off+slot], b)
			if off += slot; off == len(slots) {
				off = 0
			}
			head++
			r.head.Store(head)
			return nil
		},
		recvFn: func(b []byte) error {
			acks++
			for spin := 1; r.ack.Load() != acks; spin++ {
				yieldEvery(spin)
			}
			return nil
		},
		cmd:  cmd,
		done: func() { r.ack.Store(^uint64(0)) },
		after: func() {
			unix.Munmap(mem)
			unix.Close(fd)
		},
	}, nil
}

func init() {
	peers["rawpipe"] = func(mode string, size int) error {
		return serve(mode, size, func(b []byte) (bool, error) { return readFull(3, b) }, func(b []byte) error { return writeFull(4, b) })
	}
	peers["rawsocket"] = func(mode string, size int) error {
		return serve(mode, size, func(b []byte) (bool, error) { return readFull(3, b) }, func(b []byte) error { return writeFull(3, b) })
	}
	peers["rawmq"] = func(mode string, size int) error {
		scratch := make([]byte, 8192)
		return serve(mode, size, func(b []byte) (bool, error) {
			var n int
			err := retry(func() (err error) { n, _, err = sys.MqTimedreceive(3, scratch, nil); return err })
			copy(b, scratch[:n])
			return n > 0, err
		}, func(b []byte) error { return retry(func() error { return sys.MqTimedsend(4, b, 0, nil) }) })
	}
	peers["rawmsg"] = func(mode string, size int) error {
		q0, q1 := rawMsgQueues()
		in, out := make([]byte, 8+8192), make([]byte, 8+8192)
		binary.NativeEndian.PutUint64(out, 1)
		return serve(mode, size, func(b []byte) (bool, error) {
			var n int
			err := retry(func() (err error) { n, err = sys.Msgrcv(q0, in, 0, 0); return err })
			copy(b, in[8:8+n])
			return n > 0, err
		}, func(b []byte) error {
			n := copy(out[8:], b)
			return retry(func() error { return sys.Msgsnd(q1, out[:8+n], 0) })
		})
	}
	peers["rawshmring"] = func(mode string, size int) error {
		mem, r, slots, err := mapShmRing(3, size)
		if err != nil {
			return err
		}
		defer unix.Munmap(mem)
		slot := shmRingSlot(size)
		var tail, head, acks uint64 // tail: ours; head: the sender's, as last seen
		off := 0                    // tail's slot
		return serve(mode, size, func(b []byte) (bool, error) {
			for spin := 1; tail == head; spin++ {
				if head = r.head.Load(); head == tail && r.ack.Load() == ^uint64(0) {
					return false, nil
				}
				yieldEvery(spin)
			}
			copy(b, slots[off:off+slot])
			if off += slot; off == len(slots) {
				off = 0
			}
			tail++
			r.tail.Store(tail)
			return true, nil
		}, func([]byte) error {
			acks++
			r.ack.Store(acks)
			return nil
		})
	}
	peers["rawshm"] = func(mode string, size int) error {
		size64 := int(unsafe.Sizeof(shmPage{}))
		mem, err := unix.Mmap(3, 0, size64, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return err
		}
		p := (*shmPage)(unsafe.Pointer(&mem[0]))
		buf := make([]byte, size)
		for seq := uint64(1); ; seq++ {
			var r uint64
			for r = p.req.Load(); r != seq && r != ^uint64(0); r = p.req.Load() {
			}
			if r == ^uint64(0) {
				return nil
			}
			copy(buf, p.data[:size])
			copy(p.data[:], buf)
			p.resp.Store(seq)
		}
	}
}

func BenchmarkRawRoundTrip(b *testing.B) {
	for _, s := range roundTripSizes {
		for _, d := range []struct {
			name string
			dial func() (*rawConn, error)
		}{
			{"pipe", func() (*rawConn, error) { return dialRawStream(false, "echo", s.n) }},
			{"unix", func() (*rawConn, error) { return dialRawStream(true, "echo", s.n) }},
			{"posixmq", func() (*rawConn, error) { return dialRawMQ("echo", s.n) }},
			{"sysvmq", func() (*rawConn, error) { return dialRawMsg("echo", s.n) }},
			{"shm-spin", func() (*rawConn, error) { return dialRawShm(s.n) }},
		} {
			b.Run(d.name+"/"+s.name, func(b *testing.B) {
				c, err := d.dial()
				if err != nil {
					b.Fatal(err)
				}
				defer removeRawQueues(c)
				roundTrip(b, c, s.n)
			})
		}
	}
}

func BenchmarkRawOneWay(b *testing.B) {
	for _, s := range sizes {
		for _, d := range []struct {
			name string
			max  int
			dial func() (*rawConn, error)
		}{
			{"pipe", 0, func() (*rawConn, error) { return dialRawStream(false, "sink", s.n) }},
			{"unix", 0, func() (*rawConn, error) { return dialRawStream(true, "sink", s.n) }},
			{"posixmq", 8192, func() (*rawConn, error) { return dialRawMQ("sink", s.n) }},
			{"sysvmq", 8192, func() (*rawConn, error) { return dialRawMsg("sink", s.n) }},
			{"shm-spin", 0, func() (*rawConn, error) { return dialRawShmRing(s.n) }},
		} {
			if d.max > 0 && s.n > d.max {
				continue
			}
			b.Run(d.name+"/"+s.name, func(b *testing.B) {
				c, err := d.dial()
				if err != nil {
					b.Fatal(err)
				}
				defer removeRawQueues(c)
				oneWay(b, c, s.n)
			})
		}
	}
}

// removeRawQueues removes the SysV queues a raw sysvmq child used.
func removeRawQueues(c *rawConn) {
	for _, kv := range c.cmd.Env {
		if v, ok := strings.CutPrefix(kv, "BENCH_Q"); ok && len(v) > 2 {
			id, _ := strconv.Atoi(v[2:])
			sys.MsgctlRmid(id)
		}
	}
}
