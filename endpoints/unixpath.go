package endpoints

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxSunPath is the room for a path in a sockaddr_un, with its NUL.
const maxSunPath = len(unix.RawSockaddrUnix{}.Path)

// unixPath is a socket file this process made and listens on. While it
// lives, an exclusive flock on path+".lock" keeps a second starter from
// taking the path over; Close removes the socket file (only if it is still
// ours) and the lock file.
type unixPath struct {
	path     string
	lock     *os.File
	dev, ino uint64
}

// bindUnixPath binds fd, an AF_UNIX socket of type typ, to path with
// permission perm, safely:
//
//   - two processes starting at once are told apart by the lock file;
//   - a socket file left by a crashed owner is removed only if nobody
//     accepts connections on it; anything else at path is refused;
//   - the socket is bound in a fresh 0700 directory beside path, given its
//     permission there, and renamed into place, so that no one can connect
//     through a moment of wider permission (the umask does not matter).
func bindUnixPath(fd int, path string, typ int, perm os.FileMode) (*unixPath, error) {
	if err := checkSocketPath(path); err != nil {
		return nil, err
	}
	lock, err := lockFile(path + ".lock")
	if err != nil {
		return nil, err
	}
	u := &unixPath{path: path, lock: lock}
	if err := u.bind(fd, typ, perm); err != nil {
		u.unlock()
		return nil, err
	}
	return u, nil
}

func (u *unixPath) bind(fd, typ int, perm os.FileMode) error {
	if err := reclaimStale(u.path, typ); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(filepath.Dir(u.path), ".ipcchan-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	if len(tmp) >= maxSunPath {
		return fmt.Errorf("socket path %q is too long: binding needs %d bytes of the %d a socket address holds", u.path, len(tmp)+1, maxSunPath)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: tmp}); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	if err := os.Chmod(tmp, perm.Perm()); err != nil {
		return err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, u.path, unix.RENAME_NOREPLACE); err != nil {
		return fmt.Errorf("put socket in place: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(u.path, &st); err != nil {
		return err
	}
	u.dev, u.ino = uint64(st.Dev), st.Ino
	return nil
}

// bindSlack is what binding adds to the directory's path: the fresh
// directory os.MkdirTemp makes (".ipcchan-" and at most 10 digits) and the
// socket's name in it, with their slashes.
const bindSlack = len("/.ipcchan-") + 10 + len("/s")

// checkSocketPath refuses, before anything is made, a socket path that
// does not fit in a socket address, or whose directory leaves no room to
// bind beside it, saying the limit.
func checkSocketPath(path string) error {
	if len(path) > maxSunPath {
		return fmt.Errorf("socket path %q is %d bytes, more than the %d a socket address holds (sun_path); use a shorter path, or an abstract name (@name): %w", path, len(path), maxSunPath, unix.ENAMETOOLONG)
	}
	if dir := filepath.Dir(path); len(dir)+bindSlack >= maxSunPath {
		return fmt.Errorf("socket path %q is too long: the socket is bound in a fresh directory beside it, which takes the directory's path plus %d bytes of the %d a socket address holds, so the directory %q (%d bytes) may have at most %d; use a shorter directory, or an abstract name (@name): %w",
			path, bindSlack, maxSunPath, dir, len(dir), maxSunPath-1-bindSlack, unix.ENAMETOOLONG)
	}
	return nil
}

// createErr says why the file path (the socket's lock file) could not be
// made, naming its directory when the directory is the cause.
func createErr(path string, err error) error {
	dir := filepath.Dir(path)
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("the directory %s does not exist; create it first: %w", dir, err)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%s is not a directory: %w", dir, err)
	case errors.Is(err, unix.ELOOP):
		return fmt.Errorf("the lock file %s is a symbolic link; refusing to follow it: %w", path, err)
	case errors.Is(err, unix.EROFS):
		return fmt.Errorf("the directory %s is on a read-only file system; use a writable directory: %w", dir, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil {
			return fmt.Errorf("the lock file %s belongs to uid %d and this user may not open it: %w", path, st.Uid, err)
		}
		return fmt.Errorf("this user (uid %d) may not create files in the directory %s, where the socket and its lock file go; use a directory it may write to: %w", os.Geteuid(), dir, err)
	}
	return fmt.Errorf("lock file %s: %w", path, err)
}

// reclaimStale removes a socket file at path that nobody listens on, and
// refuses anything else that is there.
func reclaimStale(path string, typ int) error {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%w: %s exists and is a %s, not a socket", fs.ErrExist, path, fileType(st.Mode))
	}
	if int(st.Uid) != os.Geteuid() {
		// Planted or left by another user: not ours to replace.
		return fmt.Errorf("%w: the socket %s belongs to uid %d", fs.ErrExist, path, st.Uid)
	}
	probe, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Connect(probe, &unix.SockaddrUnix{Name: path})
	unix.Close(probe)
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		// Left behind by an owner that is gone.
		if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove stale socket: %w", err)
		}
		return nil
	case err == nil || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINPROGRESS):
		return fmt.Errorf("%w: a process listens on %s", ErrAddrInUse, path)
	default:
		return fmt.Errorf("probe %s: %w", path, err)
	}
}

// lockFile takes an exclusive, non-blocking flock on path, creating it with
// mode 0600. It retries if the file it locked was removed meanwhile, so
// that removing the lock file on close is safe.
func lockFile(path string) (*os.File, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return nil, createErr(path, err)
		}
		f := os.NewFile(uintptr(fd), path)
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w: another process holds %s (it listens, or is starting to)", ErrAddrInUse, path)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		var held, now unix.Stat_t
		if unix.Fstat(fd, &held) == nil && unix.Lstat(path, &now) == nil && held.Ino == now.Ino && held.Dev == now.Dev {
			if int(held.Uid) != os.Geteuid() {
				f.Close()
				return nil, fmt.Errorf("%w: %s belongs to uid %d: refusing another user's lock file", fs.ErrPermission, path, held.Uid)
			}
			return f, nil
		}
		f.Close() // removed and made again under us: lock the new one
	}
}

// Close removes the socket file if it is still the one this process made,
// then the lock file, and releases the lock.
func (u *unixPath) Close() error {
	var st unix.Stat_t
	var err error
	if unix.Lstat(u.path, &st) == nil && uint64(st.Dev) == u.dev && st.Ino == u.ino {
		err = unix.Unlink(u.path)
	}
	u.unlock()
	return err
}

func (u *unixPath) unlock() {
	os.Remove(u.lock.Name())
	u.lock.Close()
}
