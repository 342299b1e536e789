package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// A C program's mq_send with priorities, read by a Go Receiver; and a Go
// Sender read by a C program's mq_receive.
func TestPosixMQWithC(t *testing.T) {
	bin := cPeer(t, "queues")
	name := mqTestName(t)
	if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 10, MsgSize: 128}); err != nil {
		t.Fatal(err)
	}
	const n = 9
	if out, err := exec.Command(bin, "mqsend", name, strconv.Itoa(n)).CombinedOutput(); err != nil {
		t.Fatalf("C sender: %v\n%s", err, out)
	}
	rx, err := endpoints.OpenMQReceiver[string](name)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx := context.Background()
	var got []string
	for range n {
		v, prio, err := rx.RecvTag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s", prio, v))
	}
	want := "[2:msg-2 2:msg-5 2:msg-8 1:msg-1 1:msg-4 1:msg-7 0:msg-0 0:msg-3 0:msg-6]"
	if fmt.Sprint(got) != want {
		t.Fatalf("from C: %v\nwant %s", got, want)
	}

	tx, err := endpoints.OpenMQSender[string](name)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		tx.SendTag(ctx, uint32(i*10), fmt.Sprintf("go-%d", i))
	}
	tx.Close() // its end-of-stream marker stays behind: the C program reads 3
	out, err := exec.Command(bin, "mqrecv", name, "3").CombinedOutput()
	if err != nil {
		t.Fatalf("C receiver: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "20 go-2\n10 go-1\n0 go-0" {
		t.Fatalf("C received:\n%s", s)
	}
}

// A C program's msgsnd of struct {long mtype; char text[64];} with two
// types, read by typed Go receivers; and Go senders read by msgrcv.
func TestSysVMQWithC(t *testing.T) {
	bin := cPeer(t, "queues")
	q, err := newTestQueue()
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(q.ID())
	if out, err := exec.Command(bin, "msgsnd", id, "6").CombinedOutput(); err != nil {
		t.Fatalf("C sender: %v\n%s", err, out)
	}
	ctx := context.Background()
	odd, _ := endpoints.SysVReceiver[string](q, endpoints.MsgSelect{Type: 2})
	even, _ := endpoints.SysVReceiver[string](q, endpoints.MsgSelect{Type: 1})
	defer odd.Close()
	defer even.Close()
	var got []string
	for _, rx := range []*ipcchan.Receiver[string]{odd, even} {
		for range 3 {
			v, typ, err := rx.RecvTag(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, fmt.Sprintf("%d:%s", typ, v))
		}
	}
	if s := fmt.Sprint(got); s != "[2:msg-1 2:msg-3 2:msg-5 1:msg-0 1:msg-2 1:msg-4]" {
		t.Fatalf("from C: %s", s)
	}

	tx, _ := endpoints.SysVSender[string](q, ipcchan.WithTag(7))
	for i := range 3 {
		tx.Send(ctx, fmt.Sprintf("go-%d", i))
	}
	out, err := exec.Command(bin, "msgrcv", id, "7", "3").CombinedOutput()
	if err != nil {
		t.Fatalf("C receiver: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "7 go-0\n7 go-1\n7 go-2" {
		t.Fatalf("C received:\n%s", s)
	}
	tx.Close()
}

// SysV message types are C longs. A C program's msgsnd of type 2^32+1 is
// never cut to type 1: a typed Receiver returns it as a *MsgTypeError
// holding the whole type and the text (and goes on with the next
// message); SysVQueue.Receive takes it with its type whole; and a Go
// SysVQueue.Send of such a type reaches a C msgrcv of that type.
func TestSysVMQLongTypesWithC(t *testing.T) {
	bin := cPeer(t, "queues")
	q, err := newTestQueue()
	if err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(q.ID())
	const big = 1<<32 + 1
	for _, m := range []struct {
		typ  int64
		text string
	}{{big, "big"}, {1, "small"}, {big, "again"}, {math.MaxInt64, "max"}} {
		if out, err := exec.Command(bin, "msgput", id, strconv.FormatInt(m.typ, 10), m.text).CombinedOutput(); err != nil {
			t.Fatalf("C msgsnd: %v\n%s", err, out)
		}
	}
	ctx := testCtx(t)
	rx, err := endpoints.SysVReceiver[string](q, endpoints.MsgSelect{})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	_, tag, err := rx.RecvTag(ctx)
	var mte *endpoints.MsgTypeError
	if !errors.As(err, &mte) || !errors.Is(err, endpoints.ErrMsgType) {
		t.Fatalf("a message of type 2^32+1: tag %d, %v; want a *MsgTypeError", tag, err)
	}
	if mte.Type != big || string(mte.Text) != "big" {
		t.Fatalf("MsgTypeError carries type %d, text %q; want %d, %q", mte.Type, mte.Text, int64(big), "big")
	}
	if v, tag, err := rx.RecvTag(ctx); err != nil || v != "small" || tag != 1 {
		t.Fatalf("the next message: %q, type %d, %v; want %q of type 1", v, tag, err, "small")
	}

	buf := make([]byte, 64)
	typ, n, err := q.Receive(ctx, endpoints.MsgSelect{Type: big}, buf)
	if err != nil || typ != big || string(buf[:n]) != "again" {
		t.Fatalf("Receive of type 2^32+1: type %d, %q, %v", typ, buf[:n], err)
	}
	if typ, n, err = q.Receive(ctx, endpoints.MsgSelect{}, buf); err != nil || typ != math.MaxInt64 || string(buf[:n]) != "max" {
		t.Fatalf("Receive: type %d, %q, %v; want the largest long", typ, buf[:n], err)
	}

	if err := q.Send(ctx, big, []byte("from go")); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "msgrcv", id, strconv.FormatInt(big, 10), "1").CombinedOutput()
	if err != nil {
		t.Fatalf("C msgrcv: %v\n%s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "4294967297 from go" {
		t.Fatalf("C msgrcv of type 2^32+1 got %q", s)
	}

	if _, err := endpoints.SysVReceiver[string](q, endpoints.MsgSelect{Type: big}); !errors.Is(err, endpoints.ErrMsgType) {
		t.Fatalf("a typed Receiver of type 2^32+1 only: %v, want ErrMsgType", err)
	}
	if st, err := q.Stats(); err != nil || st.Messages != 0 {
		t.Fatalf("left on the queue: %+v, %v", st, err)
	}
}
