//go:build !linux

// ipcchan is made of Linux system calls (futexes, memfds, POSIX and SysV
// IPC, pidfds, SCM_RIGHTS...): it builds on Linux only. The packages codec
// and ipcchan/transport are pure Go and build everywhere. Everything else
// imports this package, so that a build elsewhere stops here with one
// message.

package sys

var _ int = "ipcchan supports Linux only"
