// Command ipcchan lists and removes the kernel objects ipcchan programs
// left behind: POSIX shared memory, semaphores and queues named by
// endpoints.ObjectName, SysV queues, semaphore sets and segments keyed by
// endpoints.ObjectKey, and stale Unix socket files in the directories
// given. It removes only objects whose owner process is gone.
//
//	go run ./cmd/ipcchan ls [-gone] [DIR...]
//	go run ./cmd/ipcchan rm [-n] [DIR...]
//
// ls prints one line per object: kind, owner pid, state, name. rm removes
// every object whose owner is gone (-n: only say what it would remove).
// The exit status is 1 if something could not be read or removed.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ipcchan/ipcchan/endpoints"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "ls" && args[0] != "rm") {
		fmt.Fprintln(stderr, "usage: ipcchan ls [-gone] [DIR...] | ipcchan rm [-n] [DIR...]")
		return 2
	}
	fs := flag.NewFlagSet("ipcchan "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	gone := fs.Bool("gone", false, "ls: list only objects whose owner is gone")
	dryRun := fs.Bool("n", false, "rm: say what would be removed, remove nothing")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	status := 0
	found, err := endpoints.Leftovers(fs.Args()...)
	if err != nil {
		fmt.Fprintf(stderr, "ipcchan: %v\n", err)
		status = 1
	}
	for _, l := range found {
		switch {
		case args[0] == "ls":
			if !*gone || !l.Alive {
				fmt.Fprintln(stdout, l)
			}
		case l.Alive:
		case *dryRun:
			fmt.Fprintf(stdout, "would remove %v\n", l)
		default:
			if err := l.Remove(); err != nil {
				fmt.Fprintf(stderr, "ipcchan: %v\n", err)
				status = 1
				continue
			}
			fmt.Fprintf(stdout, "removed %v\n", l)
		}
	}
	return status
}
