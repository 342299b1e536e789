package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/go/endpoints"
)

// An object whose owner is gone is listed, removed by rm, and gone from ls
// after; one whose owner runs is listed as in use and kept.
func TestLsRm(t *testing.T) {
	// A segment "made" by a process that has exited: a key holding its pid.
	sh := exec.Command("true")
	if err := sh.Run(); err != nil {
		t.Skip("cannot run true(1)")
	}
	deadPID := sh.Process.Pid
	name := strings.Replace(endpoints.ObjectName("cmdtest"), "-"+strconv.Itoa(os.Getpid())+"-", "-"+strconv.Itoa(deadPID)+"-", 1)
	path := "/dev/shm" + name
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	defer os.Remove(path)
	live, err := endpoints.CreateShm(endpoints.ObjectName("cmdtest-live"), 64)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	defer live.Close()

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "old.sock.lock"), nil, 0o600) // a listener that died

	var out, errb bytes.Buffer
	if code := run([]string{"ls", dir}, &out, &errb); code != 0 {
		t.Fatalf("ls: %d %s", code, errb.String())
	}
	for _, want := range []string{path + "\n", "old.sock\n", "cmdtest-live"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ls does not list %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run([]string{"rm", dir}, &out, &errb); code != 0 {
		t.Fatalf("rm: %d %s", code, errb.String())
	}
	if !strings.Contains(out.String(), path) || strings.Contains(out.String(), "cmdtest-live") {
		t.Errorf("rm removed:\n%s", out.String())
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", path, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "old.sock.lock")); !os.IsNotExist(err) {
		t.Errorf("the stale lock file still exists: %v", err)
	}
	if live.Len() != 64 {
		t.Error("the live segment went away")
	}
	if code := run([]string{"frob"}, &out, &errb); code != 2 {
		t.Errorf("unknown command: status %d", code)
	}
}
