package ipcchantest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// peer is a child process playing one role of the suite.
type peer struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// peerTimeout bounds how long the suite waits for a child.
const peerTimeout = 2 * time.Minute

// startPeer re-executes the test binary as role of h, with env added and
// ends handed over.
func startPeer(t *testing.T, h *Harness, role string, env map[string]string, share bool, ends map[string]Passable) *peer {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+h.Name+"/"+role)
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &peer{t: t, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.stdout, &p.stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.stdin = stdin
	release, err := h.Give(cmd, share, ends)
	if err != nil {
		t.Fatalf("give ends to %s: %v", role, err)
	}
	err = cmd.Start()
	release()
	if err != nil {
		t.Fatalf("start %s: %v", role, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		p.stdin.Close()
		<-p.done
	})
	return p
}

// signal writes a line to the child's stdin.
func (p *peer) signal() {
	if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
		p.t.Errorf("signal child: %v", err)
	}
}

func (p *peer) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
	}
}

// wait waits for the child to exit and fails the test unless it exited 0.
func (p *peer) wait() {
	p.t.Helper()
	if err := p.exit(); err != nil {
		p.t.Errorf("child: %v\nstderr:\n%s", err, p.stderr.String())
	}
}

// exit waits for the child to exit and returns its status.
func (p *peer) exit() error {
	select {
	case <-p.done:
	case <-time.After(peerTimeout):
		p.kill()
		<-p.done
		return fmt.Errorf("still running after %v; killed", peerTimeout)
	}
	return p.err
}

// output returns the child's standard output, trimmed.
func (p *peer) output() string { return strings.TrimSpace(p.stdout.String()) }
