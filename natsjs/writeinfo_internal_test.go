package natsjs

import (
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestWriteInfoFailedWrite: a server.json whose write fails (here: a
// file-size limit of one byte, as a full disk would) is an error, and no
// truncated server.json is left for the other processes to read. The
// write's error was assigned to a variable of the if's scope and lost
// (staticcheck SA4006), and the one-byte file renamed into place.
func TestWriteInfoFailedWrite(t *testing.T) {
	dir := t.TempDir()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ) // EFBIG instead of the signal's kill
	defer signal.Reset(syscall.SIGXFSZ)
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 1, Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	err := writeInfo(dir, serverInfo{URL: "nats://127.0.0.1:4222", Token: "00"})
	if rerr := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Error("writeInfo under a one-byte file-size limit returned nil")
	}
	if _, serr := os.Stat(filepath.Join(dir, infoFile)); !os.IsNotExist(serr) {
		b, _ := os.ReadFile(filepath.Join(dir, infoFile))
		t.Errorf("a failed writeInfo left %s (%q)", infoFile, b)
	}
}
