package sys

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The key Ftok derives is the one glibc's ftok(3) derives for the same file.
func TestFtokMatchesC(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc is not installed: cannot compare with the C library's ftok")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "ftok.c")
	os.WriteFile(src, []byte(`#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
int main(int argc, char **argv) {
	for (int i = 2; i < argc; i++) printf("%d\n", (int)ftok(argv[1], atoi(argv[i])));
	return 0;
}
`), 0o600)
	bin := filepath.Join(dir, "ftok")
	if out, err := exec.Command(cc, "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
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
