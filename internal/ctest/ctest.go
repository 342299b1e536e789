// Package ctest builds the small C programs that tests use as peers, to
// check that ipcchan speaks to existing programs exactly as they are.
package ctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// gccArch is the GOARCH of the programs gcc builds by default, by the
// first part of gcc -dumpmachine.
var gccArch = map[string]string{
	"x86_64": "amd64", "i386": "386", "i486": "386", "i586": "386", "i686": "386",
	"aarch64": "arm64", "arm": "arm", "powerpc64le": "ppc64le", "powerpc64": "ppc64",
	"s390x": "s390x", "riscv64": "riscv64", "loongarch64": "loong64",
	"mips64el": "mips64le", "mips64": "mips64", "mipsel": "mipsle", "mips": "mips",
}

var target struct {
	once  sync.Once
	flags []string
	err   error
}

// targetFlags returns the flags that make gcc build for runtime.GOARCH, or
// why it cannot: it probes once, by building an empty program.
func targetFlags(cc string) ([]string, error) {
	target.once.Do(func() {
		out, err := exec.Command(cc, "-dumpmachine").Output()
		if err != nil {
			target.err = fmt.Errorf("gcc -dumpmachine: %w", err)
			return
		}
		machine := strings.TrimSpace(string(out))
		native := gccArch[strings.Split(machine, "-")[0]]
		switch {
		case native == runtime.GOARCH:
			return
		case native == "amd64" && runtime.GOARCH == "386":
			target.flags = []string{"-m32"}
		default:
			target.err = fmt.Errorf("gcc builds for %s, and no cross compiler is set up here", machine)
			return
		}
		dir, err := os.MkdirTemp("", "ctest-probe-")
		if err != nil {
			target.err = err
			return
		}
		defer os.RemoveAll(dir)
		src := filepath.Join(dir, "probe.c")
		if err := os.WriteFile(src, []byte("#include <stdio.h>\nint main(void) { return 0; }\n"), 0o600); err != nil {
			target.err = err
			return
		}
		args := append(target.flags[:len(target.flags):len(target.flags)], "-o", filepath.Join(dir, "probe"), src)
		if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
			why, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
			for line := range strings.Lines(string(out)) {
				if strings.Contains(line, "error") || strings.Contains(line, "cannot find") {
					why = strings.TrimSpace(line)
					break
				}
			}
			target.err = fmt.Errorf("gcc %s cannot build a program (install gcc-multilib for 32-bit x86): %s", strings.Join(target.flags, " "), why)
		}
	})
	return target.flags, target.err
}

// Build compiles the C program src with gcc (-O2 and flags) into a
// temporary directory of tb and returns the binary's path. The program is
// built for the test's own architecture (runtime.GOARCH), since a peer
// shares structures with it (sem_t, struct msgbuf's long): a 386 test
// binary on x86-64 gets gcc -m32. Without gcc, or when gcc cannot build
// for that architecture (no 32-bit C library: install gcc-multilib), it
// skips tb, saying which peer could not be built and why; a compile error
// fails tb with gcc's output.
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
	archFlags, err := targetFlags(cc)
	if err != nil {
		tb.Skipf("cannot build the C peer %s for %s: %v", name, runtime.GOARCH, err)
	}
	file := filepath.Join(dir, name+".c")
	if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	args := append(append(archFlags, "-O2", "-Wall", "-o", bin, file), flags...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		tb.Fatalf("gcc %s: %v\n%s", name, err, out)
	}
	return bin
}
