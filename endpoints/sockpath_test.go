package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

func init() {
	// sock-listen-in tries to listen on S_ADDR with the defaults and
	// prints the error.
	childRoles["sock-listen-in"] = func() error {
		for _, network := range []string{"unix", "unixgram"} {
			var err error
			if network == "unix" {
				var l *endpoints.Listener[int, int]
				if l, err = endpoints.Listen[int, int](context.Background(), network, os.Getenv("S_ADDR")); err == nil {
					l.Close()
				}
			} else {
				var rx *ipcchan.Receiver[int]
				if rx, _, err = endpoints.ListenPacket[int](context.Background(), network, os.Getenv("S_ADDR")); err == nil {
					rx.Close()
				}
			}
			fmt.Printf("%s %v|%v\n", network, errors.Is(err, fs.ErrPermission), err)
		}
		return nil
	}
}

// runOther runs role as another user and returns its output lines.
func runOther(t *testing.T, role string, env ...string) []string {
	t.Helper()
	out, err := otherUser(t, role, env...).Output()
	if err != nil {
		t.Fatalf("%s as uid %d: %v\n%s", role, otherUID, err, out)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// Listen and ListenPacket on a path whose directory does not exist say so,
// naming the directory, and wrap fs.ErrNotExist.
func TestListenInMissingDirectory(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "no", "such")
	path := filepath.Join(dir, "sock")
	l, err := endpoints.Listen[int, int](ctx, "unix", path)
	if err == nil {
		l.Close()
	}
	rx, _, perr := endpoints.ListenPacket[int](ctx, "unixgram", path)
	if perr == nil {
		rx.Close()
	}
	for _, err := range []error{err, perr} {
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "directory "+dir+" does not exist") || strings.Contains(err.Error(), "lock file") {
			t.Errorf("listen in a missing directory: %v; want an error wrapping fs.ErrNotExist that says the directory %s does not exist", err, dir)
		}
	}
}

// Paths and names too long for a socket address are refused with an error
// that says the limit, and nothing is made.
func TestSocketAddressTooLong(t *testing.T) {
	ctx := testCtx(t)
	base := t.TempDir()
	// The path fits a socket address, but its directory leaves no room for
	// the directory Listen binds in beside it.
	deep := filepath.Join(base, strings.Repeat("d", 95-len(base)))
	if err := os.Mkdir(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		what, network, addr, want string
	}{
		{"a path longer than sun_path", "unix", filepath.Join(base, strings.Repeat("x", 120)), "108"},
		{"a path in a deep directory", "unix", filepath.Join(deep, "s"), "at most 85"},
		{"a long abstract name", "unix", "@" + strings.Repeat("x", 120), "108"},
		{"a datagram path longer than sun_path", "unixgram", filepath.Join(base, strings.Repeat("x", 120)), "108"},
		{"a datagram path in a deep directory", "unixgram", filepath.Join(deep, "s"), "at most 85"},
	}
	for _, c := range cases {
		var err error
		if c.network == "unix" {
			var l *endpoints.Listener[int, int]
			if l, err = endpoints.Listen[int, int](ctx, c.network, c.addr); err == nil {
				l.Close()
			}
		} else {
			var rx *ipcchan.Receiver[int]
			if rx, _, err = endpoints.ListenPacket[int](ctx, c.network, c.addr); err == nil {
				rx.Close()
			}
		}
		if !errors.Is(err, unix.ENAMETOOLONG) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("listen on %s: %v; want an error wrapping ENAMETOOLONG that says %q", c.what, err, c.want)
		}
	}
	for _, network := range []string{"unix", "unixpacket"} {
		if _, err := endpoints.Dial[int, int](ctx, network, "@"+strings.Repeat("x", 120)); !errors.Is(err, unix.ENAMETOOLONG) {
			t.Errorf("Dial %s to a long abstract name: %v, want ENAMETOOLONG", network, err)
		}
	}
	if _, err := endpoints.DialPacket[int](ctx, "unixgram", filepath.Join(base, strings.Repeat("x", 120))); !errors.Is(err, unix.ENAMETOOLONG) {
		t.Errorf("DialPacket to a long path: %v, want ENAMETOOLONG", err)
	}
	if ents, _ := os.ReadDir(deep); len(ents) > 0 {
		t.Errorf("%s holds %d entries after the refused listens", deep, len(ents))
	}
}

// Listen in a directory this user may not write to says so, naming the
// directory, and wraps fs.ErrPermission.
func TestListenInUnwritableDirectory(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755) // root's, not writable by the other user
	out := runOther(t, "sock-listen-in", "S_ADDR="+filepath.Join(dir, "sock"))
	if len(out) != 2 {
		t.Fatalf("the other user printed %q", out)
	}
	for _, line := range out {
		if !strings.Contains(line, " true|") || !strings.Contains(line, "may not create files in the directory "+dir) {
			t.Errorf("listen in an unwritable directory: %s; want an error wrapping fs.ErrPermission that names the directory", line)
		}
	}
}
