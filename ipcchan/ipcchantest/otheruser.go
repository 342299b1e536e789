package ipcchantest

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// OtherUID is the uid that AsOtherUser runs processes as: nobody. No such
// user needs to exist for the kernel to enforce permissions against it.
const OtherUID = 65534

// AsOtherUser returns a command that runs this test binary as OtherUID
// (its group too), with -test.run=^$ and env added to this process's
// environment, so that a TestMain that looks at its environment plays a
// role there: the peer of a test of what another local user can reach.
// The binary run is a copy in a temporary directory that user may enter,
// removed when tb's test ends. AsOtherUser skips tb when this process may
// not change its uid (it is not root), and fails tb if the copy cannot be
// made.
func AsOtherUser(tb testing.TB, env ...string) *exec.Cmd {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("this test runs a peer as another user, which needs root (CAP_SETUID); skipping")
	}
	dir, err := os.MkdirTemp("", "ipcchan-other-user-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(os.Args[0]))
	if err := copyExecutable(bin, os.Args[0]); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: OtherUID, Gid: OtherUID}}
	return cmd
}

// copyExecutable copies the file src to a new file dst that anyone may
// execute.
func copyExecutable(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
