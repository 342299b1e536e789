//go:build linux

package sys

import (
	"fmt"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestMqRoundTrip(t *testing.T) {
	name := fmt.Sprintf("ipcchan-sys-test-%d", os.Getpid())
	attr := MqAttr{Maxmsg: 4, Msgsize: 64}
	fd, err := MqOpen(name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600, &attr)
	if err != nil {
		t.Skipf("POSIX message queues unavailable: %v", err)
	}
	defer unix.Close(fd)
	if err := MqUnlink(name); err != nil {
		t.Fatal(err)
	}
	if err := MqUnlink(name); err != unix.ENOENT {
		t.Fatalf("second unlink: %v, want ENOENT", err)
	}
	for i, p := range []uint32{1, 5, 1, 3} {
		if err := MqTimedsend(fd, []byte{byte(i)}, p, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := MqTimedsend(fd, []byte{9}, 0, nil); err != unix.EAGAIN {
		t.Fatalf("send to a full non-blocking queue: %v, want EAGAIN", err)
	}
	var got MqAttr
	if err := MqGetsetattr(fd, nil, &got); err != nil || got.Curmsgs != 4 || got.Maxmsg != 4 || got.Msgsize != 64 {
		t.Fatalf("getattr: %+v, %v", got, err)
	}
	buf := make([]byte, 64)
	if _, _, err := MqTimedreceive(fd, buf[:63], nil); err != unix.EMSGSIZE {
		t.Fatalf("receive into a short buffer: %v, want EMSGSIZE", err)
	}
	want := []struct {
		b byte
		p uint32
	}{{1, 5}, {3, 3}, {0, 1}, {2, 1}}
	for _, w := range want {
		n, p, err := MqTimedreceive(fd, buf, nil)
		if err != nil || n != 1 || buf[0] != w.b || p != w.p {
			t.Fatalf("receive: %d bytes %v prio %d, %v; want %v", n, buf[:n], p, err, w)
		}
	}
	if _, _, err := MqTimedreceive(fd, buf, nil); err != unix.EAGAIN {
		t.Fatalf("receive from an empty queue: %v", err)
	}
	// struct mq_attr is eight C longs; struct sigevent is 64 bytes
	// (SIGEV_MAX_SIZE) on every architecture.
	if long := unsafe.Sizeof(int(0)); unsafe.Sizeof(MqAttr{}) != 8*long || unsafe.Sizeof(Sigevent{}) != 64 {
		t.Fatalf("struct sizes %d, %d; want %d, 64", unsafe.Sizeof(MqAttr{}), unsafe.Sizeof(Sigevent{}), 8*long)
	}
}

func TestMsgQueue(t *testing.T) {
	id, err := Msgget(IPCPrivate, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Skipf("SysV message queues unavailable: %v", err)
	}
	defer MsgctlRmid(id)
	send := func(typ int64, text string) {
		b := append(AppendMtype(nil, typ), text...)
		if err := Msgsnd(id, b, unix.IPC_NOWAIT); err != nil {
			t.Fatal(err)
		}
	}
	send(2, "b1")
	send(1, "a1")
	send(3, "c1")
	send(2, "b2")
	var ds MsqidDs
	if err := MsgctlStat(id, &ds); err != nil || ds.Qnum != 4 || ds.Cbytes != 8 || ds.Lspid != int32(os.Getpid()) || ds.Perm.Mode&0o777 != 0o600 || ds.Perm.Uid != uint32(os.Getuid()) || ds.Qbytes == 0 {
		t.Fatalf("stat: %+v, %v", ds, err)
	}
	buf := make([]byte, MtypeSize+16)
	recv := func(typ int64, flags int) (int64, string, error) {
		n, err := Msgrcv(id, buf, typ, flags|unix.IPC_NOWAIT)
		if err != nil {
			return 0, "", err
		}
		return Mtype(buf), string(buf[MtypeSize : MtypeSize+n]), nil
	}
	check := func(typ int64, flags int, wantType int64, wantText string) {
		t.Helper()
		gt, text, err := recv(typ, flags)
		if err != nil || gt != wantType || text != wantText {
			t.Fatalf("msgrcv(%d, %#o) = %d %q %v; want %d %q", typ, flags, gt, text, err, wantType, wantText)
		}
	}
	check(1, 0, 1, "a1")          // exactly type 1
	check(-3, 0, 2, "b1")         // lowest type up to 3
	check(2, MSG_EXCEPT, 3, "c1") // first not of type 2
	check(0, 0, 2, "b2")          // first of any type
	if _, _, err := recv(0, 0); err != unix.ENOMSG {
		t.Fatalf("empty queue: %v, want ENOMSG", err)
	}
	send(1, "a longer text than the buffer")
	if _, _, err := recv(0, 0); err != unix.E2BIG {
		t.Fatalf("long message: %v, want E2BIG", err)
	}
	check(0, MSG_NOERROR, 1, "a longer text th")
	if err := MsgctlRmid(id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := recv(0, 0); err != unix.EINVAL && err != unix.EIDRM {
		t.Fatalf("receive from a removed queue: %v", err)
	}
}
