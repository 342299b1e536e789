package endpoints_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// The roles below run as another user (otherUID, see perm_test.go) and
// reach this process's sockets on abstract names, which have no file
// permissions. Each says on stdout what it did.
func init() {
	// sock-dial-send dials S_ADDR (admitting a listener of any user),
	// sends one value, and reads until its connection ends.
	childRoles["sock-dial-send"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := endpoints.Dial[string, string](ctx, "unix", os.Getenv("S_ADDR"), endpoints.AnyUser())
		if err != nil {
			fmt.Printf("dial: %v\n", err)
			return nil
		}
		defer c.Close()
		fmt.Println("dialled")
		if err := c.Send(ctx, "from uid "+strconv.Itoa(os.Getuid())); err != nil {
			fmt.Printf("send: %v\n", err)
		}
		_, err = c.Recv(ctx)
		fmt.Printf("recv: %v\n", err)
		return nil
	}
	// sock-listen-echo listens on S_ADDR admitting any user, says "ready",
	// and answers the first connection that sends a value with that value
	// and its own uid.
	childRoles["sock-listen-echo"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		l, err := endpoints.Listen[string, string](ctx, "unix", os.Getenv("S_ADDR"), endpoints.AnyUser())
		if err != nil {
			return err
		}
		defer l.Close()
		fmt.Println("ready")
		for {
			c, err := l.Accept(ctx)
			if err != nil {
				return err
			}
			v, err := c.Recv(ctx)
			if err != nil { // a dialler that hung up: wait for the next
				c.Close()
				continue
			}
			err = c.Send(ctx, v+" back from uid "+strconv.Itoa(os.Getuid()))
			c.Close()
			return err
		}
	}
	// dgram-send-other sends to the unixgram receiver at S_ADDR: an
	// ordinary datagram and a bare end-of-stream marker (ff ff ff ff) with
	// plain sendto calls, then, through DialPacket admitting a receiver of
	// any user, a value and Close's marker.
	childRoles["dgram-send-other"] = func() error {
		addr := os.Getenv("S_ADDR")
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrUnix{Name: addr}
		for _, d := range [][]byte{append([]byte{0, 0, 0, 0}, "raw datagram from another user"...), {0xff, 0xff, 0xff, 0xff}} {
			if err := unix.Sendto(fd, d, 0, sa); err != nil {
				return fmt.Errorf("sendto: %w", err)
			}
		}
		tx, err := endpoints.DialPacket[[]byte](context.Background(), "unixgram", addr, endpoints.AnyUser())
		if err != nil {
			return err
		}
		if err := tx.Send(context.Background(), []byte("value from another user")); err != nil {
			return err
		}
		if err := tx.Close(); err != nil {
			return err
		}
		fmt.Println("sent 4")
		return nil
	}
	// dgram-listen-recv binds a unixgram receiver at S_ADDR admitting any
	// user, says "ready", and prints what it receives until end of stream.
	childRoles["dgram-listen-recv"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rx, _, err := endpoints.ListenPacket[string](ctx, "unixgram", os.Getenv("S_ADDR"), endpoints.AnyUser())
		if err != nil {
			return err
		}
		defer rx.Close()
		fmt.Println("ready")
		for {
			v, err := rx.Recv(ctx)
			if err != nil {
				fmt.Printf("end: %v\n", err)
				return nil
			}
			fmt.Printf("got %q\n", v)
		}
	}
}

// startOther starts role as another user and returns its stdout, once it
// has said "ready", and a function that waits for it to exit.
func startOther(t *testing.T, role string, env ...string) (*bufio.Scanner, func() error) {
	t.Helper()
	cmd := otherUser(t, role, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var werr error
	go func() { werr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("%s as uid %d did not get ready: %q %v", role, otherUID, sc.Text(), sc.Err())
	}
	return sc, func() error {
		select {
		case <-done:
			return werr
		case <-time.After(20 * time.Second):
			return errors.New("still running after 20s")
		}
	}
}

type accepted struct {
	c   *endpoints.Conn[string, string]
	err error
}

// A stream listener on an abstract name made with the defaults refuses a
// connection from another user: Accept never returns it, nothing it sent
// is read, Refused counts it, and the next same-user client is served.
func TestAbstractListenerRefusesOtherUsers(t *testing.T) {
	ctx := testCtx(t)
	ipcchantest.CheckFDs(t)
	addr := abstractName("perm-listen")
	l, err := endpoints.Listen[string, string](ctx, "unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan accepted, 2)
	go func() {
		c, err := l.Accept(ctx)
		acc <- accepted{c, err}
	}()

	out := runOther(t, "sock-dial-send", "S_ADDR="+addr)
	t.Logf("another user: %q", out)
	if len(out) < 2 || out[0] != "dialled" {
		t.Fatalf("the other user's client could not even connect: %q", out)
	}
	if last := out[len(out)-1]; !strings.HasPrefix(last, "recv: EOF") && !strings.Contains(last, "peer gone") {
		t.Errorf("the other user's connection ended with %q, want its end of stream", last)
	}

	// Accept takes connections in order: once it returns this one, it has
	// dealt with the other user's.
	mine, err := endpoints.Dial[string, string](ctx, "unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	if err := mine.Send(ctx, "same user"); err != nil {
		t.Fatal(err)
	}
	var a accepted
	select {
	case a = <-acc:
	case <-ctx.Done():
		t.Fatal("Accept returned nothing")
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	cred, _ := a.c.PeerCred()
	v, err := a.c.Recv(ctx)
	if err != nil || v != "same user" || cred.UID != os.Getuid() {
		t.Fatalf("Accept returned a connection from uid %d whose first value is %q (%v), want this user's %q", cred.UID, v, err, "same user")
	}
	if n := l.Refused(); n != 1 {
		t.Errorf("Refused() = %d, want 1", n)
	}
}

// With AnyUser, another user's connection to an abstract name is accepted.
func TestAbstractListenerAnyUserLetsOthersIn(t *testing.T) {
	ctx := testCtx(t)
	addr := abstractName("perm-any")
	l, err := endpoints.Listen[string, string](ctx, "unix", addr, endpoints.AnyUser())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	acc := make(chan accepted, 1)
	go func() {
		c, err := l.Accept(ctx)
		if err == nil {
			c.Send(ctx, "bye") // the client's Recv returns and it exits
		}
		acc <- accepted{c, err}
	}()
	out := runOther(t, "sock-dial-send", "S_ADDR="+addr)
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	defer a.c.Close()
	v, err := a.c.Recv(ctx)
	cred, _ := a.c.PeerCred()
	if want := "from uid " + strconv.Itoa(otherUID); err != nil || v != want || cred.UID != otherUID {
		t.Fatalf("got %q (%v) from uid %d, want %q from uid %d; the client said %q", v, err, cred.UID, want, otherUID, out)
	}
	if l.Refused() != 0 {
		t.Errorf("Refused() = %d, want 0", l.Refused())
	}
}

// Dial to an abstract name that another user listens on is refused by
// default, and goes through with AnyUser.
func TestAbstractDialRefusesOtherUsersListener(t *testing.T) {
	ctx := testCtx(t)
	addr := abstractName("perm-dial")
	out, wait := startOther(t, "sock-listen-echo", "S_ADDR="+addr)
	for _, network := range []string{"unix"} {
		c, err := endpoints.Dial[string, string](ctx, network, addr)
		if err == nil {
			c.Close()
			t.Fatalf("Dial to another user's listener with the defaults succeeded")
		}
		if !errors.Is(err, endpoints.ErrPeerRefused) || !strings.Contains(err.Error(), "AnyUser") {
			t.Fatalf("Dial to another user's listener = %v, want ErrPeerRefused naming the option that lets it through", err)
		}
		t.Log(err)
	}
	c, err := endpoints.Dial[string, string](ctx, "unix", addr, endpoints.AnyUser())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cred, _ := c.PeerCred(); cred.UID != otherUID {
		t.Errorf("PeerCred().UID = %d, want %d", cred.UID, otherUID)
	}
	if err := c.Send(ctx, "ping"); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Recv(ctx); err != nil || v != "ping back from uid "+strconv.Itoa(otherUID) {
		t.Fatalf("reply %q, %v", v, err)
	}
	if err := wait(); err != nil {
		t.Fatalf("the other user's listener: %v (%s)", err, out.Text())
	}
}

// The same for sequenced packets: the other user's listener is refused.
func TestAbstractSeqpacketDialRefusesOtherUsersListener(t *testing.T) {
	ctx := testCtx(t)
	addr := abstractName("perm-seqpacket")
	// A plain listener as another user; the child exits once we are done.
	cmd := otherUser(t, "seqpacket-listen", "S_ADDR="+addr)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "ready" {
		t.Fatalf("the other user's listener: %q", sc.Text())
	}
	c, err := endpoints.Dial[string, string](ctx, "unixpacket", addr)
	if err == nil {
		c.Close()
		t.Fatal("Dial unixpacket to another user's listener with the defaults succeeded")
	}
	if !errors.Is(err, endpoints.ErrPeerRefused) {
		t.Fatalf("Dial unixpacket to another user's listener = %v, want ErrPeerRefused", err)
	}
}

func init() {
	// seqpacket-listen listens on S_ADDR with a plain seqpacket socket
	// until its stdin closes.
	childRoles["seqpacket-listen"] = func() error {
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: os.Getenv("S_ADDR")}); err != nil {
			return err
		}
		if err := unix.Listen(fd, 8); err != nil {
			return err
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return nil
	}
}

// A unixgram receiver on an abstract name made with the defaults drops
// every datagram another user sends — an ordinary one, a bare
// end-of-stream marker (ff ff ff ff), one sent by DialPacket and its
// Close's marker — and counts them, while this user's datagrams are
// delivered and this user's marker ends the stream.
func TestAbstractUnixgramDropsOtherUsersDatagrams(t *testing.T) {
	ctx := testCtx(t)
	ipcchantest.CheckFDs(t)
	addr := abstractName("perm-dgram")
	rx, _, err := endpoints.ListenPacket[[]byte](ctx, "unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	// All four of the other user's datagrams are queued before ours.
	if out := runOther(t, "dgram-send-other", "S_ADDR="+addr); len(out) != 1 || out[0] != "sent 4" {
		t.Fatalf("the other user's sender: %q", out)
	}
	tx, err := endpoints.DialPacket[[]byte](ctx, "unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"mine 1", "mine 2"} {
		if err := tx.Send(ctx, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		v, err := rx.Recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v after %q", err, got)
		}
		got = append(got, string(v))
	}
	if strings.Join(got, ",") != "mine 1,mine 2" {
		t.Errorf("received %q then the end, want this user's two values", got)
	}
	if n := endpoints.RefusedDatagrams(rx); n != 4 {
		t.Errorf("RefusedDatagrams = %d, want the other user's 4", n)
	}
}

// A unixgram receiver handed to a child keeps the check: the child drops
// what another user sent, and ends with this user's marker.
func TestInheritedUnixgramDropsOtherUsersDatagrams(t *testing.T) {
	ctx := testCtx(t)
	addr := abstractName("perm-dgram-inherit")
	rx, _, err := endpoints.ListenPacket[[]byte](ctx, "unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	if out := runOther(t, "dgram-send-other", "S_ADDR="+addr); len(out) != 1 || out[0] != "sent 4" {
		t.Fatalf("the other user's sender: %q", out)
	}
	tx, err := endpoints.DialPacket[[]byte](ctx, "unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := helperCmd(t, "dgram-recv-print")
	var out strings.Builder
	cmd.Stdout = &out
	if err := endpoints.Start(cmd, endpoints.Pass("in", rx)); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	if want := "got \"mine\"\nend: EOF, refused 4\n"; out.String() != want {
		t.Fatalf("the child that inherited the receiver printed:\n%s\nwant:\n%s", out.String(), want)
	}
}

func init() {
	// dgram-recv-print prints what the inherited receiver "in" receives,
	// until end of stream, and how many datagrams it refused.
	childRoles["dgram-recv-print"] = func() error {
		rx, err := endpoints.InheritReceiver[string]("in")
		if err != nil {
			return err
		}
		defer rx.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for {
			v, err := rx.Recv(ctx)
			if err != nil {
				fmt.Printf("end: %v, refused %d\n", err, endpoints.RefusedDatagrams(rx))
				return nil
			}
			fmt.Printf("got %q\n", v)
		}
	}
}

// With AnyUser, another user's datagrams and marker are taken.
func TestAbstractUnixgramAnyUserLetsOthersIn(t *testing.T) {
	ctx := testCtx(t)
	addr := abstractName("perm-dgram-any")
	rx, _, err := endpoints.ListenPacket[[]byte](ctx, "unixgram", addr, endpoints.AnyUser(), ipcchan.WithSenders(3))
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	runOther(t, "dgram-send-other", "S_ADDR="+addr)
	var got []string
	tx, err := endpoints.DialPacket[[]byte](ctx, "unixgram", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		v, err := rx.Recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Recv: %v after %q", err, got)
		}
		got = append(got, string(v))
	}
	// The other user's two markers (its bare one and its Close's) and
	// ours end the stream of three senders.
	if want := "raw datagram from another user,value from another user,mine"; strings.Join(got, ",") != want {
		t.Errorf("received %q, want %q", got, want)
	}
	if n := endpoints.RefusedDatagrams(rx); n != 0 {
		t.Errorf("RefusedDatagrams = %d, want 0", n)
	}
}

// DialPacket to an abstract name whose receiver another user owns is
// refused by default, and goes through with AnyUser.
func TestAbstractDialPacketRefusesOtherUsersReceiver(t *testing.T) {
	ctx := testCtx(t)
	ipcchantest.CheckFDs(t)
	addr := abstractName("perm-dialpacket")
	out, wait := startOther(t, "dgram-listen-recv", "S_ADDR="+addr)
	tx, err := endpoints.DialPacket[string](ctx, "unixgram", addr)
	if err == nil {
		tx.Close()
		t.Fatal("DialPacket to another user's receiver with the defaults succeeded")
	}
	if !errors.Is(err, endpoints.ErrPeerRefused) || !strings.Contains(err.Error(), "uid "+strconv.Itoa(otherUID)) {
		t.Fatalf("DialPacket to another user's receiver = %v, want ErrPeerRefused naming its uid", err)
	}
	t.Log(err)
	if tx, err = endpoints.DialPacket[string](ctx, "unixgram", addr, endpoints.AnyUser()); err != nil {
		t.Fatal(err)
	}
	if err := tx.Send(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for out.Scan() {
		lines = append(lines, out.Text())
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	// The receiver (admitting anyone) saw only the value sent with AnyUser:
	// the refused DialPacket sent nothing, not even a marker.
	if strings.Join(lines, "|") != `got "hello"|end: EOF` {
		t.Fatalf("the other user's receiver printed %q", lines)
	}
}
