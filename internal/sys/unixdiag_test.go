//go:build linux

package sys

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// dgramPair binds a unixgram socket to a fresh abstract name, with
// SO_PASSCRED if passcred, and connects another to it.
func dgramPair(t *testing.T, passcred bool) (recv, send int) {
	t.Helper()
	name := fmt.Sprintf("@ipcchan-sys-test-%d-%s", os.Getpid(), t.Name())
	recv, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(recv) })
	if passcred {
		if err := unix.SetsockoptInt(recv, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Bind(recv, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	if send, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(send) })
	if err := unix.Connect(send, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	return recv, send
}

// UnixPeerOwner tells who owns the socket a unixgram socket is connected
// to, which SO_PEERCRED does not, and says when it is not connected.
func TestUnixPeerOwner(t *testing.T) {
	recv, send := dgramPair(t, false)
	if uc, err := unix.GetsockoptUcred(send, unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil && int(uc.Uid) == os.Geteuid() {
		t.Logf("SO_PEERCRED on a connected datagram socket works here: %+v", uc)
	}
	uid, err := UnixPeerOwner(send)
	if errors.Is(err, ErrNoSocketOwner) {
		t.Skip(err)
	}
	if err != nil || uid != os.Geteuid() {
		t.Fatalf("UnixPeerOwner = %d, %v; want this process's uid %d", uid, err, os.Geteuid())
	}
	if _, err := UnixPeerOwner(recv); !errors.Is(err, unix.ENOTCONN) {
		t.Fatalf("UnixPeerOwner of an unconnected socket = %v, want ENOTCONN", err)
	}
}

// UcredOf finds the sender's credentials recvmsg put in the control
// buffer, without allocating, and reports none when there are none.
func TestUcredOf(t *testing.T) {
	recv, send := dgramPair(t, true)
	buf := make([]byte, 16)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for range 2 {
		if _, err := unix.Write(send, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	n, oobn, err := RecvmsgTrunc(recv, buf, oob)
	if err != nil || n != 1 {
		t.Fatalf("RecvmsgTrunc = %d, %d, %v", n, oobn, err)
	}
	uc, ok := UcredOf(oob[:oobn])
	if !ok || int(uc.Pid) != os.Getpid() || int(uc.Uid) != os.Getuid() || int(uc.Gid) != os.Getgid() {
		t.Fatalf("UcredOf = %+v, %v; want this process's pid, uid and gid", uc, ok)
	}
	if allocs := testing.AllocsPerRun(100, func() { UcredOf(oob[:oobn]) }); allocs != 0 {
		t.Errorf("UcredOf allocates %v times", allocs)
	}
	if _, ok := UcredOf(nil); ok {
		t.Error("UcredOf found credentials in an empty control buffer")
	}
	if _, ok := UcredOf(oob[:8]); ok {
		t.Error("UcredOf found credentials in a torn control buffer")
	}
}
