package endpoints_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/ipcchan/go/internal/ctest"
)

// buildC compiles the C program src (see ctest.Build), skipping tb when gcc
// is not installed.
func buildC(tb testing.TB, name, src string, flags ...string) string {
	tb.Helper()
	return ctest.Build(tb, name, src, flags...)
}

// cPeers holds the C programs under testdata, each built once per run.
var cPeers struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
}

// cPeer builds testdata/NAME.c once for the whole run and returns the
// binary, or skips t when gcc is not installed.
func cPeer(t *testing.T, name string) string {
	t.Helper()
	cPeers.mu.Lock()
	defer cPeers.mu.Unlock()
	if bin, ok := cPeers.bins[name]; ok {
		return bin
	}
	src, err := os.ReadFile(filepath.Join("testdata", name+".c"))
	if err != nil {
		t.Fatal(err)
	}
	if cPeers.dir == "" {
		if cPeers.dir, err = os.MkdirTemp("", "ipcchan-cpeers-"); err != nil {
			t.Fatal(err)
		}
		cPeers.bins = map[string]string{}
	}
	bin := ctest.BuildIn(t, cPeers.dir, name, string(src), "-lrt")
	cPeers.bins[name] = bin
	return bin
}

// removeCPeers removes the built C programs; TestMain calls it.
func removeCPeers() {
	if cPeers.dir != "" {
		os.RemoveAll(cPeers.dir)
	}
}
