package endpoints_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// The examples below cross a real process boundary the way a program does
// it: it starts itself again (os.Args[0]) with a variable that says which
// child to be, and its main runs that child first thing:
//
//	func main() {
//		if name := os.Getenv("EXAMPLE_CHILD"); name != "" {
//			if err := children[name](context.Background()); err != nil { ... }
//			return
//		}
//		...
//	}
//
// Here the test binary is that program; TestMain runs runExampleChild.

// children are the child processes the examples start, by name.
var children = map[string]func(context.Context) error{}

// runExampleChild runs the child this process was started as, if any, and
// exits.
func runExampleChild() {
	name := os.Getenv("EXAMPLE_CHILD")
	if name == "" {
		return
	}
	if err := children[name](context.Background()); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", name, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startAgain returns a command that starts this program again as the named
// child, sharing this process's standard output.
func startAgain(name string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), "EXAMPLE_CHILD="+name), env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd
}

// Jobs to a child process and results back, over two pipes handed down
// by name. The child picks its ends up with InheritReceiver and
// InheritSender (see squarer below).
func ExampleStart() {
	jobs, childJobs, err := endpoints.PipePair[int]()
	if err != nil {
		panic(err)
	}
	childResults, results, err := endpoints.PipePair[int]()
	if err != nil {
		panic(err)
	}
	cmd := startAgain("squarer")
	// Pass moves the child's ends to it: closed here, so that the end of
	// stream works.
	if err := endpoints.Start(cmd, endpoints.Pass("jobs", childJobs), endpoints.Pass("results", childResults)); err != nil {
		panic(err)
	}
	ctx := context.Background()
	for n := 1; n <= 3; n++ {
		jobs.Send(ctx, n)
	}
	jobs.Close() // the child's range over its jobs ends
	for square, err := range results.All(ctx) {
		if err != nil {
			panic(err)
		}
		fmt.Println(square)
	}
	results.Close()
	if err := cmd.Wait(); err != nil {
		panic(err)
	}
	// Output:
	// 1
	// 4
	// 9
}

func init() { children["squarer"] = squarer }

// squarer is the child of ExampleStart.
func squarer(ctx context.Context) error {
	jobs, err := endpoints.InheritReceiver[int]("jobs")
	if err != nil {
		return err
	}
	defer jobs.Close()
	results, err := endpoints.InheritSender[int]("results")
	if err != nil {
		return err
	}
	for n, err := range jobs.All(ctx) {
		if err != nil {
			return err
		}
		if err := results.Send(ctx, n*n); err != nil {
			return err
		}
	}
	return results.Close() // the parent's range ends
}

// A shared-memory ring between two processes, zero copy: the child writes
// each record straight into the ring (Sender.SendRaw) and the parent reads
// it where it lies (Receiver.RecvRaw).
func ExampleRingPair() {
	tx, rx, err := endpoints.RingPair[[]byte](256 + 64<<10) // a header and a 64 KiB ring, in a memfd
	if err != nil {
		panic(err)
	}
	defer rx.Close()
	cmd := startAgain("ring-writer")
	if err := endpoints.Start(cmd, endpoints.Pass("records", tx)); err != nil {
		panic(err)
	}
	if err := rx.WatchPeer(cmd.Process.Pid); err != nil { // a ring has no kernel end of stream
		panic(err)
	}
	ctx := context.Background()
	for {
		err := rx.RecvRaw(ctx, func(tag uint32, record []byte) error {
			fmt.Printf("tag %d: %s\n", tag, record) // record is in the ring itself
			return nil
		})
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
	}
	if err := cmd.Wait(); err != nil {
		panic(err)
	}
	// Output:
	// tag 0: record 0
	// tag 1: record 1
	// tag 2: record 2
}

func init() { children["ring-writer"] = ringWriter }

// ringWriter is the child of ExampleRingPair.
func ringWriter(ctx context.Context) error {
	tx, err := endpoints.InheritSender[[]byte]("records")
	if err != nil {
		return err
	}
	for i := range 3 {
		err := tx.SendRaw(ctx, uint32(i), 64, func(room []byte) (int, error) {
			return copy(room, fmt.Sprintf("record %d", i)), nil // written into the ring
		})
		if err != nil {
			return err
		}
	}
	return tx.Close() // the end-of-stream record
}

// A POSIX message queue delivers the highest priority first: the tag a
// Sender sends with is the message's priority.
func ExampleMQPair() {
	tx, rx, err := endpoints.MQPair[string](endpoints.MQAttr{MaxMsgs: 8, MsgSize: 64})
	if err != nil {
		panic(err)
	}
	defer rx.Close()
	ctx := context.Background()
	tx.SendTag(ctx, 1, "routine")
	tx.SendTag(ctx, 9, "urgent")
	tx.SendTag(ctx, 1, "routine, later")
	tx.Close() // posts the end-of-stream marker, after everything sent
	for {
		v, prio, err := rx.RecvTag(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Println(prio, v)
	}
	// Output:
	// 9 urgent
	// 1 routine
	// 1 routine, later
}

// A connected pair of Unix sockets, one end handed to a child: requests
// go one way and replies the other on the same connection.
func ExampleSocketPair() {
	parent, child, err := endpoints.SocketPair[string, string]()
	if err != nil {
		panic(err)
	}
	defer parent.Close()
	cmd := startAgain("shouter")
	if err := endpoints.Start(cmd, endpoints.Pass("conn", child)); err != nil {
		panic(err)
	}
	ctx := context.Background()
	for _, word := range []string{"hello", "world"} {
		parent.Send(ctx, word)
		reply, err := parent.Recv(ctx)
		if err != nil {
			panic(err)
		}
		fmt.Println(reply)
	}
	parent.Sender().Close() // the child's receive ends; it exits
	if err := cmd.Wait(); err != nil {
		panic(err)
	}
	// Output:
	// HELLO
	// WORLD
}

func init() { children["shouter"] = shouter }

// shouter is the child of ExampleSocketPair.
func shouter(ctx context.Context) error {
	conn, err := endpoints.InheritConn[string, string]("conn")
	if err != nil {
		return err
	}
	defer conn.Close()
	for word, err := range conn.Receiver().All(ctx) {
		if err != nil {
			return err
		}
		if err := conn.Send(ctx, strings.ToUpper(word)); err != nil {
			return err
		}
	}
	return nil
}

// A server listening on a socket file and a client process that dials it
// by its path. The socket file is made 0600: only this user's processes
// can connect.
func ExampleListen() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "server.sock")
	ctx := context.Background()
	// Listen[Reply, Request]: the server sends replies and receives requests.
	l, err := endpoints.Listen[int, string](ctx, "unix", path)
	if err != nil {
		panic(err)
	}
	defer l.Close() // removes the socket file
	cmd := startAgain("client", "EXAMPLE_ADDR="+path)
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	conn, err := l.Accept(ctx)
	if err != nil {
		panic(err)
	}
	for req, err := range conn.Receiver().All(ctx) {
		if err != nil {
			panic(err)
		}
		conn.Send(ctx, len(req))
	}
	conn.Close()
	if err := cmd.Wait(); err != nil {
		panic(err)
	}
	// Output:
	// "hello" has 5 bytes
	// "ipcchan" has 7 bytes
}

func init() { children["client"] = client }

// client is the child of ExampleListen: Dial[Request, Reply].
func client(ctx context.Context) error {
	conn, err := endpoints.Dial[string, int](ctx, "unix", os.Getenv("EXAMPLE_ADDR"))
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, req := range []string{"hello", "ipcchan"} {
		if err := conn.Send(ctx, req); err != nil {
			return err
		}
		n, err := conn.Recv(ctx)
		if err != nil {
			return err
		}
		fmt.Printf("%q has %d bytes\n", req, n)
	}
	return nil
}

// An open file sent to another process with a value: the child gets its
// own descriptor for the same open file (SCM_RIGHTS), here one it could
// not have opened by name, the file being already removed.
func ExampleSocketPair_sendFiles() {
	parent, child, err := endpoints.SocketPair[string, string]()
	if err != nil {
		panic(err)
	}
	defer parent.Close()
	f, err := os.CreateTemp("", "example")
	if err != nil {
		panic(err)
	}
	os.Remove(f.Name()) // no name left to open it by
	f.WriteString("the file's contents")
	cmd := startAgain("file-reader")
	if err := endpoints.Start(cmd, endpoints.Pass("conn", child)); err != nil {
		panic(err)
	}
	ctx := context.Background()
	if err := parent.Sender().SendFiles(ctx, "read this", f); err != nil {
		panic(err)
	}
	f.Close() // the child has its own descriptor
	parent.Sender().Close()
	if err := cmd.Wait(); err != nil {
		panic(err)
	}
	// Output: read this: the file's contents
}

func init() { children["file-reader"] = fileReader }

// fileReader is the child of ExampleSocketPair_sendFiles: a receiver takes
// files only if made with ipcchan.WithRecvFiles.
func fileReader(ctx context.Context) error {
	conn, err := endpoints.InheritConn[string, string]("conn", ipcchan.WithRecvFiles(1))
	if err != nil {
		return err
	}
	defer conn.Close()
	note, files, err := conn.Receiver().RecvFiles(ctx)
	if err != nil {
		return err
	}
	defer files[0].Close()
	b := make([]byte, 64)
	n, _ := files[0].ReadAt(b, 0)
	fmt.Printf("%s: %s\n", note, b[:n])
	return nil
}
