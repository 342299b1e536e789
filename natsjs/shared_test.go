package natsjs_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/natsjs"
)

// Three processes share the embedded server of one store dir: the first
// runs it, a sender and a receiver join it. The owner is SIGKILLed
// mid-stream; one of the others takes the server over (same port, same
// token, same store) and the other reconnects on its own. Nothing is
// lost, nothing taken twice, in order: the receiver's reports are checked
// by CheckExactlyOnce (a receive whose acknowledgement the outage left
// unconfirmed reports "x" and its value must come again).
func TestSharedServerOwnerKilled(t *testing.T) {
	const n = 2000
	dir := t.TempDir()
	env := []string{envStore + "=" + dir, envChannel + "=owner", envMode + "=workqueue", envMaxMsgs + "=50", envCount + "=2000"}
	owner := startChild(t, "owner", "hold", env...)
	if l := owner.line(t); l != "owner" {
		t.Fatalf("first process says %q, want owner", l)
	}
	rx := startChild(t, "receiver", "recv", env...)
	waitReady(t, rx)
	tx := startChild(t, "sender", "send", env...)
	ds, _ := readDeliveries(t, rx, nil, n/4)
	owner.kill()
	ds, ended := readDeliveries(t, rx, ds, 0)
	if !ended {
		t.Fatal("the receiver ended without the end of stream")
	}
	rx.wait(t)
	tx.wait(t)
	if err := CheckExactlyOnce(ds, n, nil, true); err != nil {
		t.Fatal(err)
	}
	var unconfirmed int
	for _, d := range ds {
		if d.NotTaken {
			unconfirmed++
		}
	}
	t.Logf("%d deliveries of %d values (%d unconfirmed acks) across the owner's death", len(ds), n, unconfirmed)
}

// The shared server keeps other users out: the store dir is 0700 and
// server.json 0600, so another uid can neither join through the dir nor,
// knowing the URL, connect without the token.
func TestSharedServerOtherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a peer as another user (CAP_SETUID)")
	}
	base := t.TempDir()
	os.Chmod(base, 0o755)
	os.Chmod(filepath.Dir(base), 0o755)
	dir := filepath.Join(base, "store")
	c := connect(t, dir)
	if c.Server() == nil {
		t.Fatal("no server")
	}
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {filepath.Join(dir, "server.json"), 0o600}} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, st.Mode(), f.mode)
		}
	}
	cmd := otherUserCmd(t, "other-user", envStore+"="+dir, envURL+"="+c.Server().ClientURL())
	p := runChild(t, "other-user", cmd)
	for _, want := range []string{"dir refused", "url refused"} {
		if l := p.line(t); l != want {
			t.Fatalf("the other user's process says %q, want %q", l, want)
		}
	}
	p.wait(t)
}

func init() {
	// other-user tries, as another uid, to join the server of a store dir
	// and to connect to its URL without the token.
	childRoles["other-user"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := natsjs.Connect(ctx, natsjs.WithStoreDir(os.Getenv(envStore)))
		if err == nil {
			c.Close()
			return errors.New("joined the store dir of another user")
		}
		if !errors.Is(err, os.ErrPermission) {
			return err
		}
		os.Stdout.WriteString("dir refused\n")
		nc, err := nats.Connect(os.Getenv(envURL), nats.NoReconnect())
		if err == nil {
			nc.Close()
			return errors.New("connected to another user's server without its token")
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			return err
		}
		os.Stdout.WriteString("url refused\n")
		return nil
	}
}

// otherUserCmd returns a command that runs this test binary as role under
// another uid (ipcchantest.AsOtherUser), or skips t when this process may
// not change its uid.
func otherUserCmd(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	return ipcchantest.AsOtherUser(t, append([]string{envRole + "=" + role}, env...)...)
}
