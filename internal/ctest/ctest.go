// Package ctest builds the small C programs that tests use as peers, to
// check that ipcchan speaks to existing programs exactly as they are.
package ctest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build compiles the C program src with gcc (-O2 and flags) into a
// temporary directory of tb and returns the binary's path. Without gcc it
// skips tb, saying which peer could not be built; a compile error fails tb
// with gcc's output.
func Build(tb testing.TB, name, src string, flags ...string) string {
	tb.Helper()
	return BuildIn(tb, tb.TempDir(), name, src, flags...)
}

// BuildIn is Build writing the source and the binary into dir, which
// outlives tb (for a binary shared by several tests).
func BuildIn(tb testing.TB, dir, name, src string, flags ...string) string {
	tb.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		tb.Skipf("gcc is not installed: cannot build the C peer %s", name)
	}
	file := filepath.Join(dir, name+".c")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	args := append([]string{"-O2", "-Wall", "-o", bin, file}, flags...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		tb.Fatalf("gcc %s: %v\n%s", name, err, out)
	}
	return bin
}
