// The tests of this directory run the C library (c/ipcchan.h) and the
// Python package (python/ipcchan) against Go endpoints, across real
// processes, in both directions.
package clients_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ipcchan/go/internal/ctest"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(clientsChild(role))
	}
	ringChild() // c_ring_test.go: this binary re-executed as a Go ring peer
	goleak.VerifyTestMain(removeBuiltAfter{m})
}

// removeBuiltAfter runs the tests, then removes the C programs they built.
type removeBuiltAfter struct{ m *testing.M }

func (r removeBuiltAfter) Run() int {
	defer func() {
		if cPrograms.dir != "" {
			os.RemoveAll(cPrograms.dir)
		}
	}()
	return r.m.Run()
}

// cPrograms holds the C programs under c/peers, each built once per run.
var cPrograms struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
}

// cProgram builds c/peers/NAME.c against c/ipcchan.h once for the whole run
// (-O2 -Wall -Wextra -Werror -std=c11, for the test's own architecture) and
// returns the binary; it skips tb when gcc is not installed or cannot build
// for GOARCH (see ctest.Build).
func cProgram(tb testing.TB, name string) string {
	tb.Helper()
	cPrograms.mu.Lock()
	defer cPrograms.mu.Unlock()
	if bin, ok := cPrograms.bins[name]; ok {
		return bin
	}
	src, err := os.ReadFile(filepath.Join("c", "peers", name+".c"))
	if err != nil {
		tb.Fatal(err)
	}
	include, err := filepath.Abs("c")
	if err != nil {
		tb.Fatal(err)
	}
	if cPrograms.dir == "" {
		if cPrograms.dir, err = os.MkdirTemp("", "ipcchan-clients-"); err != nil {
			tb.Fatal(err)
		}
		cPrograms.bins = map[string]string{}
	}
	bin := ctest.BuildIn(tb, cPrograms.dir, name, string(src), "-std=c11", "-Wextra", "-Werror", "-I", include, "-lrt")
	cPrograms.bins[name] = bin
	return bin
}

// pythonCommand returns the command that runs the Python program
// python/peers/NAME.py (with the ipcchan package of python/ on its path) and
// args, or skips tb when python3 is not installed.
func pythonCommand(tb testing.TB, name string, args ...string) *exec.Cmd {
	tb.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		tb.Skip("python3 is not installed: cannot run the Python peer " + name)
	}
	dir, err := filepath.Abs("python")
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(py, append([]string{filepath.Join(dir, "peers", name+".py")}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
	return cmd
}
