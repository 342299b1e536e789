package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

const mqueueMagic = 0x19800202 // the mqueue file system's statfs type

// mqueueDir is where the library looks for the POSIX queues.
const mqueueDir = "/dev/mqueue"

// mqueueMounted reports whether the mqueue file system is at /dev/mqueue.
func mqueueMounted() bool {
	var fs unix.Statfs_t
	return unix.Statfs(mqueueDir, &fs) == nil && fs.Type == mqueueMagic
}

// withQueues runs f where the POSIX queues can be seen at /dev/mqueue, so
// that endpoints.Leftovers finds them, and tells f what it could not look
// at. Where the mqueue file system is not mounted there (a container, a
// minimal system), f runs on a thread of its own in a private mount
// namespace whose /dev holds the mqueue file system and /dev/shm; that
// takes root (CAP_SYS_ADMIN), and without it f is told that the queues are
// not seen. Nothing changes for the rest of the system or of this process:
// the thread, and its namespace, end with f.
func withQueues(f func(note string)) {
	if mqueueMounted() {
		f("")
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread leaves the process with the goroutine
		// instead of running other goroutines in its namespace.
		runtime.LockOSThread()
		note := ""
		if err := privateDev(); err != nil {
			note = fmt.Sprintf("POSIX queues not looked at: the mqueue file system is not mounted at %s, and mounting it privately failed (%v; it takes root): mount it (mount -t mqueue none %s) or run as root", mqueueDir, err, mqueueDir)
		}
		f(note)
	}()
	<-done
}

// privateDev gives the calling thread, locked to its goroutine, a mount
// namespace of its own whose /dev is a small tmpfs holding the system's
// /dev/shm (bound) and an mqueue file system at /dev/mqueue — the two
// directories the library reads — as .ci/run does with `unshare -m`. It
// returns what failed; a failure leaves the thread's /dev as it was.
func privateDev() error {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare a mount namespace: %w", err)
	}
	// Nothing mounted from here on may reach the system's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the mounts private: %w", err)
	}
	dir, err := os.MkdirTemp("", "ipcchan-dev-")
	if err != nil {
		return err
	}
	defer os.Remove(dir) // an empty directory outside this namespace
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=16k"); err != nil {
		return fmt.Errorf("mount a tmpfs: %w", err)
	}
	err = func() error {
		shm, mq := filepath.Join(dir, "shm"), filepath.Join(dir, "mqueue")
		if err := errors.Join(os.Mkdir(shm, 0o755), os.Mkdir(mq, 0o755)); err != nil {
			return err
		}
		if _, err := os.Stat("/dev/shm"); err == nil {
			if err := unix.Mount("/dev/shm", shm, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("bind /dev/shm: %w", err)
			}
		}
		if err := unix.Mount("mqueue", mq, "mqueue", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mount the mqueue file system: %w", err)
		}
		if err := unix.Mount(dir, "/dev", "", unix.MS_MOVE, ""); err != nil {
			return fmt.Errorf("move it to /dev: %w", err)
		}
		return nil
	}()
	if err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
	}
	return err
}
