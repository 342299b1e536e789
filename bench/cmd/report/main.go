// Command report turns the output of the comparison benchmarks (go test
// -bench, several counts) into bench/RESULTS.md: a table per exchange and
// message size, each ipcchan endpoint beside the raw system calls beneath
// it and beside the other libraries, with ratios, and a Publish/subscribe
// table (BenchmarkBroadcast: one broadcast against as many rings). Every
// number is a median over the runs, with the runs' spread; round trips add
// their p50 and p99 latency, and every row the CPU time per op of both
// processes. It writes only the sections its input has data for: the
// output of a subset of the benchmarks makes a report of that subset.
//
//	go run ./cmd/report -bench bench.txt -benchstat benchstat.txt -rss rss.md \
//		-cmd 'COUNT=10 ./run' -load load.txt -took 14m -raw results.txt > RESULTS.md
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
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
	raw := flag.String("raw", "results.txt", "the file beside the report that holds the raw go test output")
	flag.Parse()
	f, err := os.Open(*benchFile)
	if err != nil {
		log.Fatal(err)
	}
	results, order, cpu := parse(f)
	f.Close()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	header(w, cpu, *command, readLoad(*load), *duration, *raw, results)
	for _, ex := range []string{"RoundTrip", "OneWay"} {
		for _, size := range sizes {
			table(w, results, ex, size)
		}
	}
	pubsub(w, results)
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
		var r *result
		switch {
		case len(parts) == 4 && parts[0] == "Broadcast": // Broadcast/SIZE/KIND/subs=N
			r = &result{group: parts[0], exchange: parts[2], name: parts[3], size: parts[1], runs: samples[name]}
		case len(parts) == 3:
			group, exchange := split(parts[0])
			r = &result{group: group, exchange: exchange, name: parts[1], size: parts[2], runs: samples[name]}
		default:
			continue
		}
		k := key(r.group, r.exchange, r.name, r.size)
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

// sizes are the message sizes of the benchmarks, in order.
var sizes = []string{"64B", "4KiB", "64KiB"}

// The libraries every ipcchan row is compared with.
var rivals = []string{"gob-pipe", "golang-ipc", "shmipc-go"}

func header(w io.Writer, cpu, command string, load []string, took, raw string, results map[string]*result) {
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
	fmt.Fprintf(w, "\n\nThe raw `go test` output of this run is in [%s](%s) (compare two runs with benchstat).\n"+
		"Each exchange is between this process and a child process (the in-process Go `chan` is the floor).\n"+
		"Every benchmark ran %d times (`-count`); every number below is the **median of those runs**, never a best\n"+
		"run:\n\n"+
		"- **ns/op**: the median over the runs of each run's mean time per message (one way) or per round trip.\n"+
		"- **spread**: (slowest run − fastest run) / median of ns/op, over the same runs. Rows marked **²**\n"+
		"  are bimodal: their runs fall into two groups (a gap between neighbouring runs of half the median\n"+
		"  or more, with two runs or more on each side); see *Every run* at the end. A row that lost runs (a\n"+
		"  library that failed in one) says how many it kept.\n",
		raw, raw, runs)
	if !slices.ContainsFunc(slices.Collect(maps.Values(results)), func(r *result) bool { return r.group != "Broadcast" }) {
		fmt.Fprintln(w) // publish/subscribe only: its table explains its columns
		return
	}
	fmt.Fprint(w, "- **p50**, **p99**: round trips only: the median and 99th percentile (nearest rank) of the latencies\n"+
		"  of the individual round trips of a run (the latest 4 Mi of them), each the median over the runs.\n"+
		"- **CPU/op**: CPU time (user + system, every thread) per message or round trip while the timer ran,\n"+
		"  of this process and of the child, from the kernel's per-process CPU clocks. A transport that\n"+
		"  spins shows it here: a core spinning the whole time costs as much CPU per op as ns/op. (The kernel\n"+
		"  updates a running thread's count at each scheduler tick, so a run's figure can be off by a few ms\n"+
		"  of CPU over the whole run: about 1 %% of a 300 ms run.)\n"+
		"- **× raw**: the endpoint's median over the median of the same exchange on plain blocking system\n"+
		"  calls (lower is better; for the ring, a bare shared-memory spin: a ping-pong round trip, a\n"+
		"  single-producer single-consumer ring of fixed slots one way), from the same run. **vs**\n"+
		"  *library*: the library's median over ipcchan's (above 1: ipcchan is that many times faster).\n\n")
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

// pubsub writes the Publish/subscribe table: BenchmarkBroadcast's
// values from this process to 1–8 subscriber processes through one
// broadcast, and through as many rings, in the same run.
func pubsub(w io.Writer, results map[string]*result) {
	var rows []*result
	for _, r := range results {
		if r.group == "Broadcast" {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return
	}
	subs := func(r *result) int {
		n, _ := strconv.Atoi(strings.TrimPrefix(r.name, "subs="))
		return n
	}
	slices.SortFunc(rows, func(a, b *result) int {
		if c := slices.Index(sizes, a.size) - slices.Index(sizes, b.size); c != 0 {
			return c
		}
		if c := strings.Compare(a.exchange, b.exchange); c != 0 {
			return c
		}
		return subs(a) - subs(b)
	})
	runs := maxRuns(results)
	fmt.Fprint(w, "## Publish/subscribe\n\n"+
		"This process publishes values to N subscriber processes, each of which receives every value\n"+
		"(lossless), either through **one broadcast** (`endpoints.Broadcast`: each value written once into\n"+
		"shared memory, every subscriber reading it there) or through **N rings** (`endpoints.RingPair`, one per\n"+
		"subscriber, the publisher sending each value to each in turn), both with a 4 MiB data area per\n"+
		"subscriber. Each subscriber checks the order, and its count and a checksum are compared with what\n"+
		"was published. Every figure is the median over the runs:\n\n"+
		"- **values/s each**: values each subscriber received per second (they all receive all of them);\n"+
		"- **ns/value**: the publisher's wall time per value, with the **spread** of its runs as above;\n"+
		"- **CPU/value publisher**: this process's CPU time per value (user + system, every thread). Waiting\n"+
		"  for the slowest subscriber counts too: the publisher spins briefly before it parks;\n"+
		"- **CPU/value subscriber**: a subscriber process's CPU time per value, the mean over the\n"+
		"  subscribers, measured by each over its batch;\n"+
		"- **× rings**: the broadcast's CPU/value publisher over the rings' with as many subscribers\n"+
		"  (below 1: the broadcast costs the publisher less).\n\n"+
		"With more busy processes than cores, the subscribers and the publisher take turns on the cores:\n"+
		"the wall time per value then measures the machine's scheduling more than either channel, and the\n"+
		"CPU time per value is the figure that shows what each side costs.\n\n")
	size := ""
	for _, r := range rows {
		if r.size != size {
			if size != "" {
				fmt.Fprintln(w)
			}
			size = r.size
			fmt.Fprintf(w, "### Publish/subscribe, %s\n\n"+
				"| | subscribers | values/s each | ns/value | spread | CPU/value publisher | CPU/value subscriber | allocs/op | × rings |\n"+
				"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n", size)
		}
		mark := ""
		if r.bimodal() {
			mark = " ²"
		}
		if n := len(r.runs["ns/op"]); n < runs {
			mark += fmt.Sprintf(" (%d runs)", n)
		}
		label := r.exchange
		if label == "broadcast" {
			label = "**broadcast**"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %.0f%%%s | %s | %s | %.0f |", label, subs(r), rate(r.med("values/s")),
			ns(r.med("ns/op")), 100*r.spread(), mark, opt(r, "cpu-ns/op"), opt(r, "sub-cpu-ns/op"), r.med("allocs/op"))
		if rings, ok := results[key("Broadcast", "rings", r.name, r.size)]; ok && r.exchange == "broadcast" && r.has("cpu-ns/op") && rings.has("cpu-ns/op") {
			fmt.Fprintf(w, " %.2f |\n", r.med("cpu-ns/op")/rings.med("cpu-ns/op"))
		} else {
			fmt.Fprint(w, " |\n")
		}
	}
	fmt.Fprintln(w)
}

// rate formats a number per second: "6.20 M".
func rate(x float64) string {
	switch {
	case x >= 1e6:
		return fmt.Sprintf("%.2f M", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1f k", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
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
