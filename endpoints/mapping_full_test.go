package endpoints_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
)

func init() {
	// fullfs mounts tiny file systems over /dev/shm and MAPFAULT_DIR in
	// its own mount namespace and checks that creating objects larger
	// than they can hold fails at once, naming the file system, and
	// leaves nothing behind; and a ramfs, which has no fallocate, over
	// MAPFAULT_RAMDIR, where CreateFileMapping must allocate the file by writing
	// it. It prints "SKIP: why" if it cannot mount.
	childRoles["mapfault-fullfs"] = func() error {
		if err := unix.Mount("none", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			fmt.Printf("SKIP: cannot make the mounts private: %v", err)
			return nil
		}
		dir, ramdir := os.Getenv("MAPFAULT_DIR"), os.Getenv("MAPFAULT_RAMDIR")
		for _, at := range []string{"/dev/shm", dir} {
			if err := unix.Mount("tmpfs", at, "tmpfs", 0, "size=64k,mode=1777"); err != nil {
				fmt.Printf("SKIP: cannot mount a tmpfs on %s: %v", at, err)
				return nil
			}
		}
		if err := unix.Mount("ramfs", ramdir, "ramfs", 0, ""); err != nil {
			fmt.Printf("SKIP: cannot mount a ramfs on %s: %v", ramdir, err)
			return nil
		}
		full := func(what, where string, err error) error {
			if err == nil {
				return fmt.Errorf("%s of 1 MiB on a 64 KiB file system succeeded", what)
			}
			if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), where) || !strings.Contains(err.Error(), "full") {
				return fmt.Errorf("%s: %v; want an error wrapping ENOSPC that says %s is full", what, err, where)
			}
			return nil
		}
		empty := func(at string, except ...string) error {
			names, err := os.ReadDir(at)
			if err != nil {
				return err
			}
			for _, n := range names {
				if !slices.Contains(except, n.Name()) {
					return fmt.Errorf("left behind in %s: %s", at, n.Name())
				}
			}
			return nil
		}
		var errs []error
		m, err := endpoints.CreateShm(endpoints.ObjectName("full"), 1<<20)
		if m != nil {
			m.Remove()
			m.Close()
		}
		errs = append(errs, full("CreateShm", "/dev/shm", err), empty("/dev/shm"))
		m, err = endpoints.CreateFileMapping(filepath.Join(dir, "mapped"), 1<<20)
		if m != nil {
			m.Remove()
			m.Close()
		}
		errs = append(errs, full("CreateFileMapping", dir, err), empty(dir))
		// Fill /dev/shm: a semaphore, though tiny, needs a page.
		filler, err := os.Create("/dev/shm/filler")
		if err != nil {
			return err
		}
		defer filler.Close()
		if _, err := filler.Write(make([]byte, 128<<10)); !errors.Is(err, unix.ENOSPC) {
			return errors.Join(append(errs, fmt.Errorf("filling /dev/shm: %v", err))...)
		}
		s, err := endpoints.CreateSemaphore(endpoints.ObjectName("full"), 1)
		if s != nil {
			s.Remove()
			s.Close()
		}
		errs = append(errs, full("CreateSemaphore", "/dev/shm", err), empty("/dev/shm", "filler"))
		// Without fallocate, the pages are allocated by writing them: they
		// are all in memory at once.
		m, err = endpoints.CreateFileMapping(filepath.Join(ramdir, "mapped"), 1<<20)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("CreateFileMapping on a ramfs: %v", err))...)
		}
		defer m.Close()
		resident := make([]byte, m.Len()/os.Getpagesize())
		b := m.Bytes()
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&resident[0]))); e != 0 {
			return fmt.Errorf("mincore: %v", e)
		}
		for i, r := range resident {
			if r&1 == 0 {
				errs = append(errs, fmt.Errorf("MapFile on a file system without fallocate: page %d of %d was not allocated", i, len(resident)))
				break
			}
		}
		return errors.Join(errs...)
	}
}

// On a full file system, CreateShm, MapFile and CreateSemaphore fail at
// once with an error wrapping ENOSPC that names it, and leave nothing
// behind, instead of handing out memory whose first touch is a SIGBUS; on
// a file system without fallocate, MapFile allocates by writing zeros.
func TestCreateOnFullFileSystem(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"=mapfault-fullfs", "MAPFAULT_DIR="+t.TempDir(), "MAPFAULT_RAMDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, unix.EPERM) {
		t.Skipf("cannot start a process in a mount namespace of its own: %v", err)
	}
	if skip, ok := strings.CutPrefix(string(out), "SKIP: "); ok {
		t.Skip(skip)
	}
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
}
