// Command unixserver shows typed requests and replies over a Unix socket: a
// server process and several client processes (this program re-executed
// with the argument "client"), each a Go value in and a Go value out, with
// context cancellation and peer credentials.
//
//	go run ./examples/unixserver
//	go run ./examples/unixserver -clients 8 -requests 5
//
// The server accepts only clients running as the same user (SO_PEERCRED).
// Ctrl-C, or the -timeout, cancels the server's context: Accept and every
// connection's Recv return, and the server exits cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipcchan/go/endpoints"
)

// Request asks the server to reverse a word. Its fields make the default
// codec gob (strings); fixed-size structs would travel in binary.
type Request struct {
	Client int
	Word   string
}

// Reply is the server's answer.
type Reply struct {
	Reversed string
	ServedBy int // the server's pid
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "client" {
		if err := client(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, "client:", err)
			os.Exit(1)
		}
		return
	}
	clients := flag.Int("clients", 3, "client processes")
	requests := flag.Int("requests", 3, "requests per client")
	timeout := flag.Duration("timeout", 30*time.Second, "stop the server after this long")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := run(ctx, *clients, *requests); err != nil {
		fmt.Fprintln(os.Stderr, "unixserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, nclients, nrequests int) error {
	dir, err := os.MkdirTemp("", "unixserver-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "server.sock")

	// The socket file is made 0600, and only our own user may connect.
	l, err := endpoints.Listen[Reply, Request](ctx, "unix", path, endpoints.SameUser())
	if err != nil {
		return err
	}
	defer l.Close()
	fmt.Printf("server pid %d listening on %s\n", os.Getpid(), path)

	// Start the clients; the server stops once they are all done.
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	var clients sync.WaitGroup
	for i := range nclients {
		cmd := exec.CommandContext(ctx, exe, "client", path)
		cmd.Env = append(os.Environ(), "CLIENT_ID="+strconv.Itoa(i), "REQUESTS="+strconv.Itoa(nrequests))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		clients.Go(func() {
			if err := cmd.Wait(); err != nil {
				fmt.Printf("client %d: %v\n", i, err)
			}
		})
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	go func() { clients.Wait(); stopServing() }()

	served, err := serve(serveCtx, l)
	fmt.Printf("server: answered %d requests from %d clients; stopped: %v\n", served, nclients, err)
	if ctx.Err() != nil {
		return ctx.Err() // interrupted or timed out
	}
	return nil
}

// serve answers requests on every connection until ctx ends, and returns
// how many it answered.
func serve(ctx context.Context, l *endpoints.Listener[Reply, Request]) (int, error) {
	var mu sync.Mutex
	served := 0
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := l.Accept(ctx)
		if err != nil {
			mu.Lock()
			defer mu.Unlock()
			return served, err
		}
		cred, _ := c.PeerCred()
		conns.Go(func() {
			defer c.Close()
			for req, err := range c.Receiver().All(ctx) {
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						fmt.Printf("server: client pid %d: %v\n", cred.PID, err)
					}
					return
				}
				if err := c.Send(ctx, Reply{Reversed: reverse(req.Word), ServedBy: os.Getpid()}); err != nil {
					return
				}
				mu.Lock()
				served++
				mu.Unlock()
			}
		})
	}
}

func client(path string) error {
	id, _ := strconv.Atoi(os.Getenv("CLIENT_ID"))
	n, _ := strconv.Atoi(os.Getenv("REQUESTS"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := endpoints.Dial[Request, Reply](ctx, "unix", path)
	if err != nil {
		return err
	}
	defer c.Close()
	words := []string{"ipcchan", "channel", "process", "socket", "context"}
	var got []string
	for i := range n {
		word := words[(id+i)%len(words)]
		if err := c.Send(ctx, Request{Client: id, Word: word}); err != nil {
			return err
		}
		r, err := c.Recv(ctx)
		if err != nil {
			return err
		}
		got = append(got, word+"→"+r.Reversed)
	}
	fmt.Printf("client %d (pid %d): %s\n", id, os.Getpid(), strings.Join(got, " "))
	return nil
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}
