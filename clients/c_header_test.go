package clients_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The header compiles on its own, without warnings, as strict C11
// (-Wpedantic) and, since it declares extern "C" for C++ programs, as
// C++17: each compiler that is installed is tried.
func TestCHeaderCompiles(t *testing.T) {
	dir := t.TempDir()
	include, err := filepath.Abs("c")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		compiler, file string
		flags          []string
	}{
		{"gcc", "main.c", []string{"-std=c11", "-Wpedantic"}},
		{"g++", "main.cc", []string{"-std=c++17"}},
	} {
		t.Run(c.compiler, func(t *testing.T) {
			cc, err := exec.LookPath(c.compiler)
			if err != nil {
				t.Skipf("%s is not installed", c.compiler)
			}
			src := filepath.Join(dir, c.file)
			if err := os.WriteFile(src, []byte("#include \"ipcchan.h\"\nint main(void) { return 0; }\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append(c.flags, "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", include, src)
			if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
				t.Fatalf("%s %v: %v\n%s", c.compiler, args, err, out)
			}
		})
	}
}
