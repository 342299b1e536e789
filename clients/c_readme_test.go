package clients_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/ctest"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
	"github.com/ipcchan/go/proc"
)

// readmeStage is the program README's "From C" section opens with.
const readmeStage = "../examples/cstage/c/stage.c"

// README's "From C" section opens with a complete program of under 30
// lines that is, byte for byte, examples/cstage/c/stage.c; built against
// the header, it runs as a stage of a Go proc.Pipeline between a Go feed
// and drain of struct{ ID uint32; Temp float64 }, converting every value.
func TestCReadmeProgram(t *testing.T) {
	ipcchantest.CheckFDs(t)
	section := readmeSection(t, "From C")
	if i := strings.Index(section, "```"); i < 0 || !strings.HasPrefix(section[i:], "```c\n") {
		t.Fatal(`README's "From C" does not start with a C program`)
	}
	_, block, _ := strings.Cut(section, "```c\n")
	block, _, _ = strings.Cut(block, "```")
	src, err := os.ReadFile(readmeStage)
	if err != nil {
		t.Fatal(err)
	}
	if block != string(src) {
		t.Fatalf("README's C program is not %s byte for byte:\n%s", readmeStage, block)
	}
	if n := strings.Count(block, "\n"); n >= 30 {
		t.Errorf("README's C program has %d lines, want under 30", n)
	}

	include, _ := filepath.Abs("c")
	cPrograms.mu.Lock()
	if cPrograms.dir == "" {
		if cPrograms.dir, err = os.MkdirTemp("", "ipcchan-clients-"); err != nil {
			cPrograms.mu.Unlock()
			t.Fatal(err)
		}
		cPrograms.bins = map[string]string{}
	}
	dir := cPrograms.dir
	cPrograms.mu.Unlock()
	bin := ctest.BuildIn(t, dir, "readme_stage", string(src), "-std=c11", "-Wextra", "-Werror", "-I", include, "-lrt")

	type Reading struct {
		ID   uint32
		Temp float64
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 500
	var got []string
	err = proc.Pipeline(ctx, []*exec.Cmd{exec.Command(bin)},
		func(ctx context.Context, in *ipcchan.Sender[Reading]) error {
			for i := range n {
				if err := in.Send(ctx, Reading{uint32(i), float64(i) - 40}); err != nil {
					return err
				}
			}
			return nil
		},
		func(ctx context.Context, out *ipcchan.Receiver[Reading]) error {
			for r, err := range out.All(ctx) {
				if err != nil {
					return err
				}
				got = append(got, fmt.Sprintf("%d %g", r.ID, r.Temp))
			}
			return nil
		})
	if err != nil {
		t.Fatalf("pipeline through the README's C stage: %v", err)
	}
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("%d %g", i, (float64(i)-40)*9/5+32))
	}
	checkLines(t, "through the C stage", got, want)
}

// readmeSection returns the text of README.md's section "## NAME", up to
// the next section.
func readmeSection(t *testing.T, name string) string {
	t.Helper()
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## "+name+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", "## "+name)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// README's "From C" shows a ring reader, clients/c/peers/readme_ring.c byte
// for byte; handed the receiving end of a Go RingPair[string] as "jobs", it
// prints every record with its tag, in order, until the end of stream.
func TestCReadmeRing(t *testing.T) {
	ipcchantest.CheckFDs(t)
	section := readmeSection(t, "From C")
	_, after, ok := strings.Cut(section, "**Rings.**")
	if !ok {
		t.Fatal(`README's "From C" has no **Rings.** paragraph`)
	}
	_, block, ok := strings.Cut(after, "```c\n")
	if !ok {
		t.Fatal(`README's **Rings.** paragraph shows no C program`)
	}
	block, _, _ = strings.Cut(block, "```")
	src, err := os.ReadFile(filepath.Join("c", "peers", "readme_ring.c"))
	if err != nil {
		t.Fatal(err)
	}
	if block != string(src) {
		t.Fatalf("README's ring reader is not c/peers/readme_ring.c byte for byte:\n%s", block)
	}
	bin := cProgram(t, "readme_ring")
	tx, rx, err := endpoints.RingPair[string](256 + 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	if err := endpoints.Start(cmd, endpoints.Pass("jobs", rx)); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 1000 {
		v := strings.Repeat("x", i%300) + fmt.Sprint(i)
		if err := tx.SendTag(ctx, uint32(i%7), v); err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("tag %d: %s", i%7, v))
	}
	if err := tx.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the README's ring reader: %v", err)
	}
	checkLines(t, "from the README's ring reader", strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n"), want)
}
