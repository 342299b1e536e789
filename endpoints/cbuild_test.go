package endpoints_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// buildC compiles the C program src with gcc into a temporary directory
// and returns the binary, or skips tb with a clear message when gcc is not
// installed.
func buildC(tb testing.TB, name, src string, flags ...string) string {
	tb.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		tb.Skipf("gcc is not installed: cannot build the C peer %s", name)
	}
	dir := tb.TempDir()
	file := filepath.Join(dir, name+".c")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	args := append([]string{"-O2", "-o", bin, file}, flags...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		tb.Fatalf("gcc %s: %v\n%s", name, err, out)
	}
	return bin
}
