package endpoints

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// shmDir is where Linux keeps POSIX shared memory objects, as shm_open(3)
// does.
const shmDir = "/dev/shm/"

// shmPath checks a POSIX shared memory name ("/name", as shm_open takes it)
// and returns its path.
func shmPath(name string) (string, error) {
	k, ok := strings.CutPrefix(name, "/")
	if !ok || k == "" || len(k) > 255 || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
		return "", fmt.Errorf("%w %q: a POSIX shared memory name is a slash and 1 to 255 bytes without another slash", ErrInvalidName, name)
	}
	return shmDir + k, nil
}

// CreateShm creates the POSIX shared memory object name ("/something", in
// /dev/shm as shm_open makes it) of size bytes and maps it. It is created
// with the permission of ipcchan.WithPerm (0600 by default; the one option
// it honours) and O_EXCL: an
// existing object, or a symbolic link planted at its path, is refused
// (wrapping os.ErrExist). Remove it with [Mapping.Remove] or [RemoveShm].
//
// The memory is allocated at once (fallocate): when /dev/shm is full,
// CreateShm fails with an error wrapping unix.ENOSPC that says so, and
// leaves nothing behind, rather than the first touch of the memory killing
// the program with SIGBUS. A POSIX shared memory object cannot be sealed:
// a peer that truncates it makes the package's accesses return an error
// wrapping [ErrCorrupt] (see [Mapping]).
func CreateShm(name string, size int, opts ...ipcchan.Option) (*Mapping, error) {
	path, err := shmPath(name)
	desc := "posix shm " + name
	if err != nil {
		return nil, opErr("create", desc, err)
	}
	if size <= 0 {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: desc, Err: fmt.Errorf("%w: %d bytes", ErrMappingSize, size)}
	}
	cfg, err := newConfig("create", desc, optCreate, opts)
	if err != nil {
		return nil, err
	}
	perm := uint32(cfg.Perm())
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, opErr("create", desc, err)
	}
	err = unix.Fchmod(fd, perm) // whatever the umask took away
	if err == nil {
		err = unix.Ftruncate(fd, int64(size))
	}
	if err == nil {
		err = reserve(fd, int64(size), strings.TrimSuffix(shmDir, "/"))
	}
	if err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, opErr("create", desc, err)
	}
	return mapFD(fd, desc, size, func() error { return os.Remove(path) }, false)
}

// OpenShm maps the whole existing POSIX shared memory object name, with
// whatever permission its creator gave it; a symbolic link is refused, and
// so is an empty object. Its memory may have been left unallocated by its
// creator, or be truncated by a peer: the package's accesses then return
// an error wrapping [ErrCorrupt] (see [Mapping]). With
// ipcchan.WithWaitForCreate, the one option it honours, it waits for the
// object to be created and sized instead (inotify on /dev/shm).
func OpenShm(name string, opts ...ipcchan.Option) (*Mapping, error) {
	path, err := shmPath(name)
	desc := "posix shm " + name
	if err != nil {
		return nil, opErr("open", desc, err)
	}
	fd, err := openSized(path, desc, opts)
	if err != nil {
		return nil, err
	}
	return mapWhole(fd, desc, func() error { return os.Remove(path) })
}

// RemoveShm removes the POSIX shared memory object name; mappings of it
// stay usable until closed.
func RemoveShm(name string) error {
	path, err := shmPath(name)
	if err == nil {
		err = unix.Unlink(path)
	}
	return transport.WrapError("unlink", "posix shm "+name, err)
}

// CreateSysVShm creates a SysV shared memory segment of size bytes for key
// (IPCPrivate: a new private one) with the permission of ipcchan.WithPerm
// (0600 by default; the one option it honours) and IPC_EXCL (an existing
// segment is refused, wrapping os.ErrExist), and attaches it.
// [Mapping.Remove] marks it for removal (IPC_RMID), which happens once
// every process has detached; [Mapping.ID] is what other processes attach
// with [AttachSysVShm].
func CreateSysVShm(key Key, size int, opts ...ipcchan.Option) (*Mapping, error) {
	desc := fmt.Sprintf("sysv shm key %#x", key)
	if size <= 0 {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: desc, Err: fmt.Errorf("%w: %d bytes", ErrMappingSize, size)}
	}
	cfg, err := newConfig("create", desc, optCreate, opts)
	if err != nil {
		return nil, err
	}
	perm := int(cfg.Perm())
	id, err := unix.SysvShmGet(int(key), size, unix.IPC_CREAT|unix.IPC_EXCL|perm)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: desc, Err: limitErr(err, sysvShmKind)}
	}
	m, err := AttachSysVShm(id)
	if err != nil {
		unix.SysvShmCtl(id, unix.IPC_RMID, nil)
	}
	return m, err
}

// OpenSysVShm attaches the existing segment for key. With
// ipcchan.WithWaitForCreate, the one option it honours, it waits for the
// segment to be created instead, polling (SysV has no creation event; a
// segment has its size from its creation).
func OpenSysVShm(key Key, opts ...ipcchan.Option) (*Mapping, error) {
	id, err := openSysV(fmt.Sprintf("sysv shm key %#x", key), opts, func() (int, error) { return unix.SysvShmGet(int(key), 0, 0) })
	if err != nil {
		return nil, err
	}
	return AttachSysVShm(id)
}

// AttachSysVShm attaches the segment with identifier id, as another
// process reported it with [Mapping.ID].
func AttachSysVShm(id int) (*Mapping, error) {
	desc := fmt.Sprintf("sysv shm %d", id)
	data, err := unix.SysvShmAttach(id, 0, 0)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "attach", Endpoint: desc, Err: removedErr(err)}
	}
	remove := func() error {
		_, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		return err
	}
	// A segment cannot shrink, and its memory stays attached even once
	// removed (IPC_RMID): no fault guard.
	return newMapping(data, nil, id, remove, desc, false), nil
}

// ID returns a SysV segment's identifier, or -1 for other mappings.
func (m *Mapping) ID() int {
	if !m.made() {
		return -1
	}
	return m.shmid
}
