// Command ipcchan lists and removes the kernel objects ipcchan programs
// left behind: POSIX shared memory, semaphores and queues named by
// endpoints.ObjectName, SysV queues, semaphore sets and segments keyed by
// endpoints.ObjectKey, and stale Unix socket files in the directories
// given. It removes only objects whose owner process is gone and that
// belong to the user running it. It also prints the fingerprint and hello
// of a type, for programs in other languages.
//
//	go run ./cmd/ipcchan ls [-gone] [-json] [DIR...]
//	go run ./cmd/ipcchan rm [-n] [-all-users] [DIR...]
//	go run ./cmd/ipcchan fingerprint [-codec NAME] TYPE
//	go run ./cmd/ipcchan help [COMMAND]
//
// `ipcchan help` explains every command, what "owner gone" means and the
// JSON ls -json prints; `ipcchan help COMMAND` or `ipcchan COMMAND -h`
// explains one (see help.go for the text).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/ipcchan/go/endpoints"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd := args[0]; {
	case cmd == "ls" || cmd == "rm":
		return leftovers(args, stdout, stderr)
	case cmd == "fingerprint":
		return fingerprint(args[1:], stdout, stderr)
	case cmd == "help" && len(args) == 1, isHelpFlag(cmd):
		fmt.Fprint(stdout, fullHelp())
		return 0
	case cmd == "help":
		topic := args[1]
		if isHelpFlag(topic) {
			topic = "help"
		}
		text, ok := commandHelp[topic]
		if !ok || len(args) > 2 {
			fmt.Fprintf(stderr, "ipcchan help: no command %q\n%s", args[1], usage)
			return 2
		}
		fmt.Fprint(stdout, text)
		return 0
	}
	fmt.Fprintf(stderr, "ipcchan: unknown command %q\n%s", args[0], usage)
	return 2
}

// isHelpFlag reports whether arg asks for help: -h, -help, --help.
func isHelpFlag(arg string) bool {
	return slices.Contains([]string{"-h", "-help", "--h", "--help"}, arg)
}

// newFlags returns the flag set of command cmd: its errors go to stderr,
// and parse turns -h into the command's help on stdout.
func newFlags(cmd string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ipcchan "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

// parse parses args into fs, for command cmd. It returns -1 to go on, or
// the exit status: 0 after printing the command's help on stdout (-h), 2
// after a bad flag (the flag package has said which on stderr).
func parse(fs *flag.FlagSet, cmd string, args []string, stdout, stderr io.Writer) int {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return -1
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, commandHelp[cmd])
		return 0
	}
	fmt.Fprintf(stderr, "run 'ipcchan help %s' for its flags\n", cmd)
	return 2
}

// leftovers runs ls and rm, with the POSIX queues in view (withQueues).
func leftovers(args []string, stdout, stderr io.Writer) int {
	cmd := args[0]
	fs := newFlags(cmd, stderr)
	var o lsOptions
	dryRun, allUsers := new(bool), new(bool)
	if cmd == "ls" {
		fs.BoolVar(&o.gone, "gone", false, "list only objects whose owner is gone")
		fs.BoolVar(&o.json, "json", false, "print one JSON document (see ipcchan help ls)")
	} else {
		dryRun = fs.Bool("n", false, "say what would be removed, remove nothing")
		allUsers = fs.Bool("all-users", false, "remove other users' objects too (as root); without it rm removes only the objects of the user running it")
	}
	if status := parse(fs, cmd, args[1:], stdout, stderr); status >= 0 {
		return status
	}
	status := 0
	withQueues(func(note string) {
		if cmd == "ls" {
			status = ls(fs.Args(), o, note, stdout, stderr)
		} else {
			status = rm(fs.Args(), *dryRun, *allUsers, note, stdout, stderr)
		}
	})
	return status
}

// rm removes the objects found in dirs and the kernel's tables whose owner
// is gone and that belong to this user (any user's with allUsers), or
// says what it would remove (dryRun).
func rm(dirs []string, dryRun, allUsers bool, note string, stdout, stderr io.Writer) int {
	status := 0
	if note != "" {
		fmt.Fprintf(stderr, "ipcchan rm: %s\n", note)
	}
	found, err := endpoints.Leftovers(dirs...)
	if err != nil {
		fmt.Fprintf(stderr, "ipcchan: %v\n", err)
		status = 1
	}
	me := os.Geteuid()
	for _, l := range found {
		switch {
		case l.Alive:
		case !allUsers && l.UID != me:
			fmt.Fprintf(stdout, "skipped %v: it belongs to uid %d, not to you (uid %d), whatever pid its name holds; as root, rm -all-users removes it\n", l, l.UID, me)
		case dryRun:
			fmt.Fprintf(stdout, "would remove %v\n", l)
		default:
			remove := l.Remove
			if allUsers {
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
