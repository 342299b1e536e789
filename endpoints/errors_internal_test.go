package endpoints

import (
	"context"
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan/transport"
)

// A POSIX queue's receive error says "receive", and its send error "send":
// both went through one mapper that said "send".
func TestPosixMQErrorsNameTheirDirection(t *testing.T) {
	name := ObjectName("errdir")
	if err := CreateMQ(name, MQAttr{MaxMsgs: 2, MsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	defer RemoveMQ(name)
	// Each end on a descriptor open the other way: the kernel says EBADF.
	wfd, err := openMQ(name, unix.O_WRONLY)
	if err != nil {
		t.Fatal(err)
	}
	rq, err := newPosixMQ(wfd, "posix mq "+name, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer rq.Close()
	err = rq.TryRecvMsg(func(uint32, []byte) error { return nil })
	if !errors.Is(err, unix.EBADF) || !strings.HasPrefix(err.Error(), "receive: ") {
		t.Errorf("receive on a write-only queue descriptor = %v, want a receive error wrapping EBADF", err)
	}
	rfd, err := openMQ(name, unix.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	sq, err := newPosixMQ(rfd, "posix mq "+name, testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	err = sq.SendMsg(context.Background(), 0, []byte("x"))
	if !errors.Is(err, unix.EBADF) || !strings.HasPrefix(err.Error(), "send: ") {
		t.Errorf("send on a read-only queue descriptor = %v, want a send error wrapping EBADF", err)
	}
}

// testConfig is the Config of no options.
func testConfig(t *testing.T) *transport.Config {
	cfg, err := transport.NewConfig("a test", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
