// Command ipcchan lists and removes the kernel objects ipcchan programs
// left behind: POSIX shared memory, semaphores and queues named by
// endpoints.ObjectName, SysV queues, semaphore sets and segments keyed by
// endpoints.ObjectKey, and stale Unix socket files in the directories
// given. It removes only objects whose owner process is gone and that
// belong to the user running it.
//
//	go run ./cmd/ipcchan ls [-gone] [DIR...]
//	go run ./cmd/ipcchan rm [-n] [-all-users] [DIR...]
//	go run ./cmd/ipcchan fingerprint [-codec NAME] TYPE
//
// ls prints one line per object: kind, owning user, owner pid, state,
// name. rm removes every object whose owner is gone (-n: only say what it
// would remove). The pid in a name or key proves nothing (anyone can name
// an object so), so rm leaves another user's objects alone and says so;
// run as root, -all-users removes them too. Neither command opens anything
// that could block or lead elsewhere: no symbolic link, no FIFO, nothing
// but regular lock files, without waiting. The exit status is 1 if
// something could not be read or removed.
//
// fingerprint prints, for a type written as a Go type expression
// ('struct{ ID uint32; Temp float64 }', '[]byte', 'map[string]int'), its
// description and fingerprint (PROTOCOL.md §4) and, given the codec's name
// (-codec bytes, json, binary-le, ...), the hello a channel of that type
// opens with, alone and as a frame: what a program in another language
// must send and expect.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ipcchan/go/endpoints"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = "usage: ipcchan ls [-gone] [DIR...] | ipcchan rm [-n] [-all-users] [DIR...] | ipcchan fingerprint [-codec NAME] TYPE"

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "ls", "rm":
		return leftovers(args, stdout, stderr)
	case "fingerprint":
		return fingerprint(args[1:], stdout, stderr)
	}
	fmt.Fprintln(stderr, usage)
	return 2
}

// leftovers runs ls and rm.
func leftovers(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ipcchan "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	gone := fs.Bool("gone", false, "ls: list only objects whose owner is gone")
	dryRun := fs.Bool("n", false, "rm: say what would be removed, remove nothing")
	allUsers := fs.Bool("all-users", false, "rm: remove other users' objects too (as root); without it rm removes only the objects of the user running it")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	status := 0
	found, err := endpoints.Leftovers(fs.Args()...)
	if err != nil {
		fmt.Fprintf(stderr, "ipcchan: %v\n", err)
		status = 1
	}
	me := os.Geteuid()
	for _, l := range found {
		switch {
		case args[0] == "ls":
			if !*gone || !l.Alive {
				fmt.Fprintln(stdout, l)
			}
		case l.Alive:
		case !*allUsers && l.UID != me:
			fmt.Fprintf(stdout, "skipped %v: it belongs to uid %d, not to you (uid %d), whatever pid its name holds; as root, rm -all-users removes it\n", l, l.UID, me)
		case *dryRun:
			fmt.Fprintf(stdout, "would remove %v\n", l)
		default:
			remove := l.Remove
			if *allUsers {
				remove = l.RemoveAnyUser
			}
			err := remove()
			switch {
			case errors.Is(err, endpoints.ErrOtherUser):
				fmt.Fprintf(stdout, "skipped %v\n", err)
			case err != nil:
				fmt.Fprintf(stderr, "ipcchan: %v\n", err)
				status = 1
			default:
				fmt.Fprintf(stdout, "removed %v\n", l)
			}
		}
	}
	return status
}
