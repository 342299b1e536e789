package endpoints

import (
	"context"
	"fmt"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// MQNotifier waits for mq_notify(2) notifications of a POSIX queue without
// signals and without a thread: the kernel delivers them (SIGEV_THREAD
// style, as the C library does) as a cookie on a netlink socket that the
// runtime poller watches.
//
// mq_notify's rules hold: a notification comes when a message arrives in
// the empty queue and no process is blocked in mq_receive on it (ipcchan
// receivers never block there: they poll), and only one process at a time
// may be registered for a queue. A Receiver does not need this; it is for
// programs that want to know that work arrived without taking it, or that
// cooperate with C programs using mq_notify.
//
// Wait may not be called concurrently with itself; Close may.
type MQNotifier struct {
	name   string
	mu     sync.Mutex // guards mqfd, -1 once closed
	mqfd   int
	nl     *poller.FD
	cookie [notifyCookieLen]byte
	buf    [notifyCookieLen]byte
	readFn func(int) error
}

const (
	notifyCookieLen = 32 // NOTIFY_COOKIE_LEN
	notifyWokenUp   = 1  // NOTIFY_WOKENUP, in the cookie's last byte
	sigevThread     = 2  // SIGEV_THREAD
)

// NotifyMQ returns an MQNotifier for the existing POSIX queue name. Close
// it to release its descriptors.
func NotifyMQ(name string) (*MQNotifier, error) {
	fd, err := openMQ(name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		unix.Close(fd)
		return nil, opErr("notify", name, err)
	}
	nl, err := poller.Open(s, "mq_notify socket")
	if err != nil {
		unix.Close(fd)
		return nil, opErr("notify", name, err)
	}
	n := &MQNotifier{name: name, mqfd: fd, nl: nl}
	n.readFn = n.read
	return n, nil
}

func (n *MQNotifier) read(fd int) error {
	m, err := unix.Read(fd, n.buf[:])
	if err == nil && m != notifyCookieLen {
		return fmt.Errorf("a %d-byte notification, want %d", m, notifyCookieLen)
	}
	return err
}

// register asks for one notification, or withdraws the registration.
func (n *MQNotifier) register(on bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mqfd < 0 {
		return os.ErrClosed
	}
	if !on {
		return sys.MqNotify(n.mqfd, nil)
	}
	var s int
	if err := n.nl.Control(func(fd int) { s = fd }); err != nil {
		return err
	}
	ev := sys.Sigevent{Value: uintptr(unsafe.Pointer(&n.cookie[0])), Signo: int32(s), Notify: sigevThread}
	return sys.MqNotify(n.mqfd, &ev)
}

// Wait registers for the next notification and waits for it: it returns
// nil once a message has arrived in the empty queue. It returns ctx.Err()
// if ctx ends first (the registration is withdrawn), an error wrapping
// ErrNotifyBusy if another process is registered, and os.ErrClosed after
// Close.
func (n *MQNotifier) Wait(ctx context.Context) error {
	switch {
	case !n.made():
		return errNotMade("notify", "MQNotifier", "NotifyMQ")
	case ctx == nil:
		return &ipcchan.OpError{Op: "notify", Endpoint: n.name, Err: errNilContext}
	}
	if err := n.register(true); err != nil {
		if err == unix.EBUSY {
			err = ErrNotifyBusy
		}
		return opErr("notify", n.name, err)
	}
	for {
		err := n.nl.Read(ctx, n.readFn)
		if err != nil {
			n.register(false) // withdraw; the kernel's "removed" cookie is read next time
			return transport.WrapError("notify", n.name, err)
		}
		if n.buf[notifyCookieLen-1] == notifyWokenUp {
			return nil
		}
		// A "removed" cookie from an earlier, withdrawn registration.
	}
}

// made reports whether NotifyMQ made n. (A zero MQNotifier's queue
// descriptor, 0, is standard input: it must never be used.)
func (n *MQNotifier) made() bool { return n != nil && n.nl != nil }

// Close withdraws any registration and releases the descriptors.
func (n *MQNotifier) Close() error {
	if !n.made() {
		return errNotMade("close", "MQNotifier", "NotifyMQ")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mqfd < 0 {
		return nil
	}
	sys.MqNotify(n.mqfd, nil)
	unix.Close(n.mqfd)
	n.mqfd = -1
	return n.nl.Close()
}
