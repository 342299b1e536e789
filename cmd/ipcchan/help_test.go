package main

import (
	"bytes"
	"strings"
	"testing"
)

// help, -h and --help print the whole help on standard output and exit 0;
// it explains every command and what "owner gone" means.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"-help"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 || errb.Len() != 0 {
			t.Fatalf("%q: status %d, stderr %q", args, code, errb.String())
		}
		for _, want := range []string{
			"usage: ipcchan ls [-gone] [-json] [DIR...]", "ipcchan rm [-n] [-all-users]",
			"ipcchan fingerprint [-codec NAME] TYPE", "ipcchan help [COMMAND]",
			`"Owner` + "\ngone\" means that no process with that pid runs", "-all-users   as root",
			`"owner_alive": bool`, "-codec NAME", "Exit status",
		} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%q does not say %q:\n%s", args, want, out.String())
			}
		}
	}
}

// help CMD, CMD -h and CMD --help print that command's help on standard
// output and exit 0.
func TestCommandHelp(t *testing.T) {
	for _, cmd := range []string{"ls", "rm", "fingerprint", "help"} {
		for _, args := range [][]string{{"help", cmd}, {cmd, "-h"}, {cmd, "--help"}} {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code != 0 || errb.Len() != 0 {
				t.Errorf("%q: status %d, stderr %q", args, code, errb.String())
				continue
			}
			if out.String() != commandHelp[cmd] || !strings.HasPrefix(out.String(), "usage: ipcchan "+cmd) {
				t.Errorf("%q printed:\n%s\nwant the help of %s", args, out.String(), cmd)
			}
		}
	}
	// -h after other flags too.
	var out, errb bytes.Buffer
	if code := run([]string{"ls", "-gone", "-h"}, &out, &errb); code != 0 || out.String() != commandHelp["ls"] {
		t.Errorf("ls -gone -h: status %d:\n%s", code, out.String())
	}
}

// A wrong command line exits 2 with the usage on standard error and
// nothing on standard output.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"frob"}, {"help", "frob"}, {"ls", "-frob"}, {"rm", "-gone"}, {"ls", "-n"}, {"fingerprint"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || out.Len() != 0 || !strings.Contains(errb.String(), "usage") && !strings.Contains(errb.String(), "ipcchan help") {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want 2, nothing, the usage", args, code, out.String(), errb.String())
		}
	}
	var out, errb bytes.Buffer
	run([]string{"frob"}, &out, &errb)
	if !strings.Contains(errb.String(), `unknown command "frob"`) || !strings.Contains(errb.String(), usage) {
		t.Errorf("frob: stderr %q, want it named and the usage", errb.String())
	}
}
