//go:build linux

package sys

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ipcchan/go/internal/ctest"
)

// The key Ftok derives is the one glibc's ftok(3) derives for the same file.
func TestFtokMatchesC(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "ftok.c") // a file to derive keys from
	os.WriteFile(src, nil, 0o600)
	bin := ctest.Build(t, "ftok", `#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
int main(int argc, char **argv) {
	for (int i = 2; i < argc; i++) printf("%d\n", (int)ftok(argv[1], atoi(argv[i])));
	return 0;
}
`)
	ids := []int{0, 1, 'A', 255, 256, 0x1234}
	for _, path := range []string{dir, src, "/", os.DevNull} {
		args := []string{path}
		for _, id := range ids {
			args = append(args, strconv.Itoa(id))
		}
		out, err := exec.Command(bin, args...).Output()
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Fields(string(out)) {
			want, _ := strconv.ParseInt(line, 10, 32)
			got, err := Ftok(path, ids[i])
			if err != nil || got != Key(want) {
				t.Errorf("Ftok(%q, %#x) = %#x, %v; C says %#x", path, ids[i], got, err, want)
			}
		}
	}
	if _, err := Ftok(filepath.Join(dir, "missing"), 1); err == nil {
		t.Error("Ftok of a missing file succeeded")
	}
}
