package endpoints

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// Mapping is a region of memory shared between processes: a memfd, a
// mapped file, a POSIX shared memory object or a SysV segment. Bytes gives
// the memory itself; [ViewOf] gives typed access; [RingPair] and
// [RingSender]/[RingReceiver] turn a mapping into a channel.
//
// Close unmaps the region: slices obtained from Bytes must not be used
// afterwards, but every method of Mapping and of its views returns an
// error wrapping os.ErrClosed rather than touching unmapped memory. The
// methods are safe for concurrent use.
//
// A peer that shrinks the object (truncates the file or the shared memory
// object) takes the memory away under the mapping; touching it then faults
// (SIGBUS), which kills a Go program. A memfd is sealed against that
// (F_SEAL_SHRINK; see [NewMemfd]) and a SysV segment cannot shrink; on
// other mappings, this package's own accesses — rings, semaphores, views —
// turn the fault into an error wrapping [ErrCorrupt], and every later
// access returns the same error. Your own accesses through Bytes have no
// such guard: guard them with runtime/debug.SetPanicOnFault, or use a
// [View].
type Mapping struct {
	uses   callGuard // the calls using the memory; Close waits for them, then unmaps
	data   []byte
	file   *os.File // the object's descriptor, nil for SysV segments
	shmid  int      // SysV segment identifier, or -1
	remove func() error
	desc   string

	// guard says that the object can shrink under the mapping (it is not
	// a sealed memfd or a SysV segment): accesses run under the fault
	// guard (see mapfault.go). base and size locate the memory, for
	// telling its faults from others; fault is the error once it faulted.
	guard bool
	base  uintptr
	size  int
	fault atomic.Pointer[error]

	// unguarded says that a Semaphore on this mapping may have touched
	// the memory outside uses (its fast paths, see semfast.go): Close
	// waits for those with quiesce before it unmaps.
	unguarded atomic.Bool
}

// NewMemfd returns a mapping of size bytes of anonymous shared memory
// (memfd_create): nothing in any file system names it, so nothing is left
// behind however the program ends. Hand its [Mapping.File] to another
// process and map it there with [MappingFromFile].
//
// The memory is allocated at once (fallocate), so that a memory limit is
// an error here rather than a fault at the first touch, and the memfd is
// sealed against shrinking (F_SEAL_SHRINK): a process it is handed to
// cannot truncate it under this one (its ftruncate fails with EPERM). It
// can still grow, and be written.
func NewMemfd(name string, size int) (*Mapping, error) {
	desc := "memfd " + name
	if size <= 0 {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: desc, Err: fmt.Errorf("%w: %d bytes", ErrMappingSize, size)}
	}
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: desc, Err: limitErr(err, descriptorKind)}
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return nil, opErr("create", desc, err)
	}
	if err := reserve(fd, int64(size), ""); err != nil {
		unix.Close(fd)
		return nil, opErr("create", desc, err)
	}
	return mapFD(fd, desc, size, nil, sealShrink(fd))
}

// MappingFromFile maps the whole of an open file that refers to shared
// memory or a regular file: a memfd or POSIX shared memory object handed
// down from another process, say. It works on a duplicate of the
// descriptor; close f when MappingFromFile returns.
//
// A memfd that allows sealing is sealed against shrinking first
// (F_SEAL_SHRINK, for every process that has it). Any other object can be
// truncated under the mapping by a peer: the package's accesses to it then
// return an error wrapping [ErrCorrupt] (see [Mapping]).
func MappingFromFile(f *os.File) (*Mapping, error) {
	if f == nil {
		return nil, errNilFile("map")
	}
	fd, err := dupOf(f)
	if err != nil {
		return nil, opErr("map", f.Name(), err)
	}
	return mapWhole(fd, f.Name(), nil)
}

// CreateFileMapping makes the regular file at path, size bytes, and maps
// it, shared with every process that maps it. The file is made with the
// mode of ipcchan.WithPerm (0600 by default; the one option it honours) and
// O_EXCL — an existing file, or a symbolic link, is refused with an error
// wrapping os.ErrExist — and its blocks are allocated at once (fallocate,
// or zeros written where the file system has none): on a full file system
// it fails with an error wrapping unix.ENOSPC that names the directory,
// and removes the file. [Mapping.Remove] deletes the file. A peer that
// truncates the file makes the package's accesses return an error wrapping
// [ErrCorrupt] (see [Mapping]).
func CreateFileMapping(path string, size int, opts ...ipcchan.Option) (*Mapping, error) {
	desc := "file mapping " + path
	cfg, err := newConfig("create", desc, optCreate, opts)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, &ipcchan.OpError{Op: "create", Endpoint: desc, Err: fmt.Errorf("%w: %d bytes", ErrMappingSize, size)}
	}
	perm := uint32(cfg.Perm())
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_CREAT|unix.O_EXCL, perm)
	if err != nil {
		return nil, opErr("create", desc, err)
	}
	// The umask may have taken bits away: give the mode asked for.
	err = unix.Fchmod(fd, perm)
	if err == nil {
		err = unix.Ftruncate(fd, int64(size))
	}
	if err == nil {
		err = reserve(fd, int64(size), filepath.Dir(path))
	}
	if err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, opErr("create", desc, err)
	}
	return mapFD(fd, desc, size, func() error { return os.Remove(path) }, false)
}

// OpenFileMapping maps the whole existing regular file at path, shared with
// every process that maps it. A symbolic link is refused, and so is an
// empty file. [Mapping.Remove] deletes the file. A peer that truncates the
// file makes the package's accesses return an error wrapping [ErrCorrupt]
// (see [Mapping]). With ipcchan.WithWaitForCreate, the one option it
// honours, it waits for the file to be created and sized instead (inotify
// on its directory).
func OpenFileMapping(path string, opts ...ipcchan.Option) (*Mapping, error) {
	desc := "file mapping " + path
	fd, err := openSized(path, desc, opts)
	if err != nil {
		return nil, err
	}
	return mapWhole(fd, desc, func() error { return os.Remove(path) })
}

// openSized opens the shared memory object or file at path for mapping,
// without following a symbolic link. With ipcchan.WithWaitForCreate in
// opts it waits until the object exists and its creator has sized it
// (ftruncate: an event on the directory's watch); without, an empty one is
// left for mapWhole to refuse.
func openSized(path, desc string, opts []ipcchan.Option) (int, error) {
	cfg, err := newConfig("open", desc, optWait, opts)
	if err != nil {
		return -1, err
	}
	wctx, release, err := waitContext(cfg, nil, "open", desc)
	if err != nil {
		return -1, err
	}
	defer release()
	fd := -1
	err = awaitCreate(wctx, desc, filepath.Dir(path), func() (openState, error) {
		var err error
		if fd, err = unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0); notExist(err) {
			return notCreated, err
		}
		var st unix.Stat_t
		if err == nil && wctx != nil && unix.Fstat(fd, &st) == nil && st.Size == 0 && st.Mode&unix.S_IFMT == unix.S_IFREG {
			unix.Close(fd) // not sized yet: its ftruncate is an event
			fd = -1
			return notCreated, nil
		}
		return opened, err
	})
	if err != nil {
		return -1, wrapErr("open", desc, err)
	}
	return fd, nil
}

// mapWhole maps all of fd, which must be a regular file (or memfd or shm
// object) of non-zero size. A memfd is sealed against shrinking first,
// if it can be, so that the size it maps stays.
func mapWhole(fd int, desc string, remove func() error) (*Mapping, error) {
	sealed := sealShrink(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, opErr("map", desc, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &ipcchan.OpError{Op: "map", Endpoint: desc, Err: fmt.Errorf("not a regular file or shared memory object (%s)", fileType(st.Mode))}
	}
	if st.Size <= 0 {
		unix.Close(fd)
		return nil, &ipcchan.OpError{Op: "map", Endpoint: desc, Err: fmt.Errorf("%w: the object is empty", ErrMappingSize)}
	}
	return mapFD(fd, desc, int(st.Size), remove, sealed)
}

// mapFD maps size bytes of fd shared, taking ownership of fd. sealed says
// that the object cannot shrink (see sealShrink): otherwise accesses to
// the mapping are guarded against faults.
func mapFD(fd int, desc string, size int, remove func() error, sealed bool) (*Mapping, error) {
	data, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, opErr("map", desc, err)
	}
	return newMapping(data, os.NewFile(uintptr(fd), desc), -1, remove, desc, !sealed), nil
}

// newMapping returns the Mapping of data.
func newMapping(data []byte, file *os.File, shmid int, remove func() error, desc string, guard bool) *Mapping {
	return &Mapping{data: data, file: file, shmid: shmid, remove: remove, desc: desc,
		guard: guard, base: uintptr(unsafe.Pointer(unsafe.SliceData(data))), size: len(data)}
}

// String describes the mapping.
func (m *Mapping) String() string {
	if !m.made() {
		return "zero Mapping"
	}
	return m.desc
}

// made reports whether a constructor made m: a Mapping declared by hand
// maps nothing.
func (m *Mapping) made() bool { return m != nil && m.desc != "" }

func (m *Mapping) notMade(op string) error {
	return errNotMade(op, "Mapping", "NewMemfd, CreateFileMapping, OpenFileMapping, CreateShm, OpenShm, CreateSysVShm or MappingFromFile")
}

// Bytes returns the shared memory, or nil after Close. Accesses through
// it are not guarded against a peer that shrinks the object: see
// [Mapping].
func (m *Mapping) Bytes() []byte {
	if !m.made() {
		return nil
	}
	if !m.uses.enter() {
		return nil
	}
	defer m.uses.leave()
	return m.data
}

// Len returns the size of the mapping in bytes (0 after Close).
func (m *Mapping) Len() int { return len(m.Bytes()) }

// Sync writes a file mapping's changes back to the file (msync); for
// other kinds it has nothing to do.
func (m *Mapping) Sync() error {
	if !m.made() {
		return m.notMade("sync")
	}
	if !m.uses.enter() {
		return m.opErr("sync", os.ErrClosed)
	}
	defer m.uses.leave()
	return m.opErr("sync", unix.Msync(m.data, unix.MS_SYNC))
}

// File returns a duplicate of the descriptor behind the mapping, to hand
// to another process. SysV segments have none (ipcchan.ErrNotSupported):
// pass their identifier.
func (m *Mapping) File() (*os.File, error) {
	if !m.made() {
		return nil, m.notMade("file")
	}
	if !m.uses.enter() {
		return nil, m.opErr("file", os.ErrClosed)
	}
	defer m.uses.leave()
	switch {
	case m.file == nil:
		return nil, m.opErr("file", ipcchan.ErrNotSupported)
	}
	fd, err := dupOf(m.file)
	if err != nil {
		return nil, m.opErr("file", err)
	}
	return os.NewFile(uintptr(fd), m.desc), nil
}

// Remove destroys the named object behind the mapping: it unlinks a POSIX
// shared memory object or a mapped file, or marks a SysV segment for
// removal once every process has detached. Mappings stay usable until
// closed. A memfd has no name: Remove does nothing.
func (m *Mapping) Remove() error {
	if !m.made() {
		return m.notMade("remove")
	}
	if m.remove == nil {
		return nil
	}
	return m.opErr("remove", m.remove())
}

// Close unmaps the memory and releases the descriptor. It is idempotent.
// On a mapping that holds a [Semaphore], it first stops the world for a
// moment (tens of microseconds, as runtime.ReadMemStats does), so that
// no semaphore call is still touching the memory: those calls take no
// lock.
func (m *Mapping) Close() error {
	if !m.made() {
		return m.notMade("close")
	}
	// Close refuses new uses at once; a call that waits while using the
	// memory (a semaphore's Acquire) sees that and lets go.
	if !m.uses.close() {
		return nil
	}
	m.uses.wait()
	if m.unguarded.Load() {
		quiesce()
	}
	var err error
	if m.shmid >= 0 {
		err = unix.SysvShmDetach(m.data)
	} else {
		err = unix.Munmap(m.data)
	}
	if m.file != nil {
		err = errors.Join(err, m.file.Close())
	}
	m.data = nil
	return m.opErr("close", err)
}

func (m *Mapping) opErr(op string, err error) error { return transport.WrapError(op, m.desc, err) }
