// Command report turns the output of the comparison benchmarks (go test
// -bench, several counts) into bench/RESULTS.md: a table per exchange and
// message size, each ipcchan endpoint beside the raw system calls beneath
// it and beside the other libraries, with ratios. Every number is a median
// over the runs, with the runs' spread; round trips add their p50 and p99
// latency, and every row the CPU time per op of both processes.
//
//	go run ./cmd/report -bench bench.txt -benchstat benchstat.txt -rss rss.md \
//		-cmd 'COUNT=10 ./run' -load load.txt -took 14m > RESULTS.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A result is one benchmark's runs: every metric's value in each run,
// and their medians.
type result struct {
	group, exchange, name, size string               // "IPCChan", "RoundTrip", "pipe", "64B"
	runs                        map[string][]float64 // unit → one value per run
}

// med is the median over the runs of unit, 0 where it was not reported.
func (r *result) med(unit string) float64 { return median(r.runs[unit]) }

// has reports whether every run reported unit.
func (r *result) has(unit string) bool {
	return len(r.runs[unit]) > 0 && len(r.runs[unit]) == len(r.runs["ns/op"])
}

// spread is (max − min) / median of ns/op over the runs.
func (r *result) spread() float64 {
	xs := r.runs["ns/op"]
	if len(xs) == 0 {
		return 0
	}
	return (slices.Max(xs) - slices.Min(xs)) / median(xs)
}

// bimodal reports whether the runs' ns/op fall into two groups: sorted,
// some gap between neighbours is at least half the median, with at least
// two runs on each side of it.
func (r *result) bimodal() bool {
	xs := slices.Sorted(slices.Values(r.runs["ns/op"]))
	m := median(xs)
	for i := 2; i+1 < len(xs); i++ {
		if xs[i]-xs[i-1] >= m/2 {
			return true
		}
	}
	return false
}

func main() {
	benchFile := flag.String("bench", "", "go test -bench output")
	statFile := flag.String("benchstat", "", "benchstat's summary of it, appended")
	rssFile := flag.String("rss", "", "TestPeakRSS's table, appended")
	command := flag.String("cmd", "./run", "the command that produced the output, quoted in the header")
	load := flag.String("load", "", "a file with the load averages before and after the run (uptime's output, two lines)")
	duration := flag.String("took", "", "how long the benchmarks took")
	flag.Parse()
	f, err := os.Open(*benchFile)
	if err != nil {
		log.Fatal(err)
	}
	results, order, cpu := parse(f)
	f.Close()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	header(w, cpu, *command, readLoad(*load), *duration, results)
	for _, ex := range []string{"RoundTrip", "OneWay"} {
		for _, size := range []string{"64B", "4KiB", "64KiB"} {
			table(w, results, ex, size)
		}
	}
	if *rssFile != "" {
		if b, err := os.ReadFile(*rssFile); err == nil {
			fmt.Fprintf(w, "## Memory: 1 GiB through each endpoint\n\n"+
				"Peak resident set (VmHWM) of a sender and a receiver process moving 1 GiB, beside the same two\n"+
				"processes taking their ends and exiting; the difference is what the transfer cost.\n\n%s\n", b)
		}
	}
	everyRun(w, results, order)
	if *statFile != "" {
		if b, err := os.ReadFile(*statFile); err == nil {
			fmt.Fprintf(w, "## benchstat\n\nbenchstat's summary of the same runs: its ± is the 95%% confidence interval of the median\n"+
				"(not the spread above).\n\n<details><summary>sec/op of every benchmark</summary>\n\n```\n%s```\n\n</details>\n", b)
		}
	}
}

// readLoad returns the lines of the load file, trimmed.
func readLoad(file string) []string {
	if file == "" {
		return nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	return lines
}

func parse(r io.Reader) (map[string]*result, []string, string) {
	samples := map[string]map[string][]float64{}
	var order []string
	cpu := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "cpu: "); ok {
			cpu = v
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		name := fields[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i] // the GOMAXPROCS suffix
		}
		if _, ok := samples[name]; !ok {
			order = append(order, name)
			samples[name] = map[string][]float64{}
		}
		for i := 2; i+1 < len(fields); i += 2 {
			x, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			samples[name][fields[i+1]] = append(samples[name][fields[i+1]], x)
		}
	}
	results := map[string]*result{}
	var keys []string
	for _, name := range order {
		parts := strings.Split(strings.TrimPrefix(name, "Benchmark"), "/")
		if len(parts) != 3 {
			continue
		}
		group, exchange := split(parts[0])
		r := &result{group: group, exchange: exchange, name: parts[1], size: parts[2], runs: samples[name]}
		k := key(group, exchange, r.name, r.size)
		results[k] = r
		keys = append(keys, k)
	}
	return results, keys, cpu
}

// split cuts "IPCChanRoundTrip" into "IPCChan" and "RoundTrip".
func split(s string) (string, string) {
	for _, ex := range []string{"RoundTrip", "OneWay"} {
		if g, ok := strings.CutSuffix(s, ex); ok {
			return g, ex
		}
	}
	return s, ""
}

func key(group, exchange, name, size string) string {
	return group + "/" + exchange + "/" + name + "/" + size
}

func median(vs []float64) float64 {
	xs := slices.Sorted(slices.Values(vs))
	if len(xs) == 0 {
		return 0
	}
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}

// rawFor is the raw baseline each endpoint is measured against.
var rawFor = map[string]string{
	"pipe": "pipe", "unix": "unix", "unixpacket": "unix", "tcp": "unix", "unixgram": "unix",
	"posixmq": "posixmq", "sysvmq": "sysvmq", "ring": "shm-spin",
}

// The libraries every ipcchan row is compared with.
var rivals = []string{"gob-pipe", "golang-ipc", "shmipc-go"}

func header(w io.Writer, cpu, command string, load []string, took string, results map[string]*result) {
	kernel, _ := exec.Command("uname", "-r").Output()
	runs := maxRuns(results)
	fmt.Fprintf(w, "# Benchmark results\n\n"+
		"Generated on %s by\n\n```\ncd bench && %s\n```\n\n"+
		"Machine: %s, %d CPUs, Linux %s, %s. ", time.Now().UTC().Format("2006-01-02"), command,
		orUnknown(cpu), runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
	if took != "" {
		fmt.Fprintf(w, "The benchmarks took %s. ", took)
	}
	if len(load) > 0 {
		fmt.Fprintf(w, "The machine is shared (other people's tests ran at the same time); `uptime` before and\n"+
			"after the run:\n\n")
		for _, l := range load {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	fmt.Fprintf(w, "\n\nThe raw `go test` output of this run is in [results.txt](results.txt) (compare two runs with benchstat).\n"+
		"Each exchange is between this process and a child process (the in-process Go `chan` is the floor).\n"+
		"Every benchmark ran %d times (`-count`); every number below is the **median of those runs**, never a best\n"+
		"run:\n\n"+
		"- **ns/op**: the median over the runs of each run's mean time per message (one way) or per round trip.\n"+
		"- **spread**: (slowest run − fastest run) / median of ns/op, over the same runs. Rows marked **²**\n"+
		"  are bimodal: their runs fall into two groups (a gap between neighbouring runs of half the median\n"+
		"  or more, with two runs or more on each side); see *Every run* at the end. A row that lost runs (a\n"+
		"  library that failed in one) says how many it kept.\n"+
		"- **p50**, **p99**: round trips only: the median and 99th percentile (nearest rank) of the latencies\n"+
		"  of the individual round trips of a run (the latest 4 Mi of them), each the median over the runs.\n"+
		"- **CPU/op**: CPU time (user + system, every thread) per message or round trip while the timer ran,\n"+
		"  of this process and of the child, from the kernel's per-process CPU clocks. A transport that\n"+
		"  spins shows it here: a core spinning the whole time costs as much CPU per op as ns/op. (The kernel\n"+
		"  updates a running thread's count at each scheduler tick, so a run's figure can be off by a few ms\n"+
		"  of CPU over the whole run: about 1 %% of a 300 ms run.)\n"+
		"- **× raw**: the endpoint's median over the median of the same exchange on plain blocking system\n"+
		"  calls (lower is better; for the ring, a bare shared-memory spin: a ping-pong round trip, a\n"+
		"  single-producer single-consumer ring of fixed slots one way), from the same run. **vs**\n"+
		"  *library*: the library's median over ipcchan's (above 1: ipcchan is that many times faster).\n\n",
		runs)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}

func table(w io.Writer, results map[string]*result, exchange, size string) {
	runs := maxRuns(results)
	var rows []*result
	for _, g := range []string{"IPCChan", "Raw", "Lib"} {
		var group []*result
		for _, r := range results {
			if r.group == g && r.exchange == exchange && r.size == size {
				group = append(group, r)
			}
		}
		slices.SortFunc(group, func(a, b *result) int { return strings.Compare(order(a.name), order(b.name)) })
		rows = append(rows, group...)
	}
	if len(rows) == 0 {
		return
	}
	title := map[string]string{"RoundTrip": "Round trip", "OneWay": "One way"}[exchange]
	rt := exchange == "RoundTrip"
	fmt.Fprintf(w, "## %s, %s\n\n", title, size)
	fmt.Fprint(w, "| | ns/op | spread |")
	align := "| --- | ---: | ---: |"
	if rt {
		fmt.Fprint(w, " p50 | p99 |")
		align += " ---: | ---: |"
	}
	fmt.Fprint(w, " CPU/op here | CPU/op child | MB/s | allocs/op | × raw |")
	align += " ---: | ---: | ---: | ---: | ---: |"
	for _, r := range rivals {
		fmt.Fprintf(w, " vs %s |", r)
		align += " ---: |"
	}
	fmt.Fprintf(w, "\n%s\n", align)
	for _, r := range rows {
		label := map[string]string{"IPCChan": "ipcchan ", "Raw": "raw ", "Lib": ""}[r.group] + r.name
		if r.group == "IPCChan" {
			label = "**" + label + "**"
		}
		mark := ""
		if r.bimodal() {
			mark = " ²"
		}
		if n := len(r.runs["ns/op"]); n < runs {
			mark += fmt.Sprintf(" (%d runs)", n)
		}
		fmt.Fprintf(w, "| %s | %s | %.0f%%%s |", label, ns(r.med("ns/op")), 100*r.spread(), mark)
		if rt {
			fmt.Fprintf(w, " %s | %s |", opt(r, "p50-ns"), opt(r, "p99-ns"))
		}
		fmt.Fprintf(w, " %s | %s | %.1f | %.0f |", opt(r, "cpu-ns/op"), opt(r, "peer-cpu-ns/op"), r.med("MB/s"), r.med("allocs/op"))
		if raw, ok := results[key("Raw", exchange, rawFor[r.name], size)]; ok && r.group == "IPCChan" {
			fmt.Fprintf(w, " %.2f |", r.med("ns/op")/raw.med("ns/op"))
		} else {
			fmt.Fprint(w, " |")
		}
		for _, name := range rivals {
			if lib, ok := results[key("Lib", exchange, name, size)]; ok && r.group == "IPCChan" {
				fmt.Fprintf(w, " %.2f |", lib.med("ns/op")/r.med("ns/op"))
			} else {
				fmt.Fprint(w, " |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// maxRuns is the number of runs of the benchmarks that lost none.
func maxRuns(results map[string]*result) int {
	n := 0
	for _, r := range results {
		n = max(n, len(r.runs["ns/op"]))
	}
	return n
}

// opt is the median of unit as a time, or "—" where r did not report it.
func opt(r *result, unit string) string {
	if !r.has(unit) {
		return "—"
	}
	return ns(r.med(unit))
}

// everyRun lists each benchmark's ns/op in every run, sorted, so that a
// bimodal row can be seen for what it is.
func everyRun(w io.Writer, results map[string]*result, keys []string) {
	fmt.Fprint(w, "## Every run\n\n<details><summary>ns/op of each run, fastest first</summary>\n\n"+
		"| benchmark | runs |\n| --- | --- |\n")
	for _, k := range keys {
		r := results[k]
		var cells []string
		for _, x := range slices.Sorted(slices.Values(r.runs["ns/op"])) {
			cells = append(cells, ns(x))
		}
		mark := ""
		if r.bimodal() {
			mark = " ²"
		}
		fmt.Fprintf(w, "| %s%s | %s |\n", k, mark, strings.Join(cells, ", "))
	}
	fmt.Fprint(w, "\n</details>\n\n")
}

// order sorts rows in a fixed, meaningful order.
func order(name string) string {
	for i, n := range []string{"chan", "pipe", "unix", "unixpacket", "tcp", "unixgram", "posixmq", "sysvmq", "ring", "shm-spin",
		"gob-pipe", "gob-unix", "netrpc-pipe", "netrpc-unix", "golang-ipc", "shmipc-go"} {
		if n == name {
			return fmt.Sprintf("%02d", i)
		}
	}
	return "99" + name
}

func ns(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2f ms", x/1e6)
	case x >= 1e4:
		return fmt.Sprintf("%.1f µs", x/1e3)
	case x >= 1e3:
		return fmt.Sprintf("%.2f µs", x/1e3)
	}
	return fmt.Sprintf("%.0f ns", x)
}
