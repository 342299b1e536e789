package endpoints

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// Shared memory that vanishes. A process that maps a file, a POSIX shared
// memory object or a memfd gets SIGBUS when it touches a page that is no
// longer inside the object: another process truncated it, or the page was
// never allocated and the file system is full. By default that kills the
// Go program. Two defences, decided per mapping when it is made:
//
//   - A memfd is sealed against shrinking (F_SEAL_SHRINK): the memfds this
//     package creates, and any memfd it maps that allows sealing. Nothing
//     can then take its pages away, and it is used with no guard at all,
//     as is a SysV segment, which cannot shrink and whose memory stays
//     while anyone has it attached, even after IPC_RMID.
//   - Every other mapping (POSIX shared memory, files, memfds that cannot
//     be sealed) is guarded: the package's own accesses to it run with
//     runtime/debug.SetPanicOnFault, and the fault's panic is recovered
//     into an error wrapping ErrCorrupt, which every later access returns
//     too (the mapping is broken for good).
//
// Objects the package creates get their space reserved (fallocate), so
// that a full file system is an error at creation, not a fault later.

// sealShrink makes sure that the object behind fd cannot shrink: it adds
// F_SEAL_SHRINK to a memfd that lacks it and allows sealing. It reports
// whether the object is sealed against shrinking; objects that do not
// support seals (files, POSIX shared memory) are not.
func sealShrink(fd int) bool {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	switch {
	case err != nil:
		return false // EINVAL: not a memfd
	case seals&unix.F_SEAL_SHRINK != 0:
		return true
	case seals&unix.F_SEAL_SEAL != 0:
		return false
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK)
	return err == nil
}

// faultErr returns the error of a guarded mapping whose memory faulted,
// or nil while it has not.
func (m *Mapping) faultErr() error {
	if e := m.fault.Load(); e != nil {
		return *e
	}
	return nil
}

// catchFault ends a guarded access to m's memory. Deferred as
//
//	defer m.catchFault(&err, debug.SetPanicOnFault(true))
//
// it restores the goroutine's panic-on-fault setting and turns a fault on
// m's memory into m's (sticky) fault error in *err; any other panic goes
// on.
func (m *Mapping) catchFault(err *error, old bool) {
	debug.SetPanicOnFault(old)
	if p := recover(); p != nil {
		*err = m.faulted(p)
	}
}

// faulted returns m's fault error for the recovered panic p, or panics on
// with p if it is not a memory fault inside m: only faults on the shared
// memory are ours to turn into errors.
func (m *Mapping) faulted(p any) error {
	_, isRuntime := p.(runtime.Error)
	f, hasAddr := p.(interface{ Addr() uintptr })
	if !isRuntime || !hasAddr || f.Addr() < m.base || f.Addr()-m.base >= uintptr(m.size) {
		panic(p)
	}
	return m.broke(fmt.Sprintf("a fault at byte %d", f.Addr()-m.base))
}

// broke marks m's memory as gone, for good, and returns the error every
// guarded access returns from now on. what says how it showed.
func (m *Mapping) broke(what string) error {
	err := fmt.Errorf("%w: %s of the %d-byte mapping: the memory is gone: a peer shrank or replaced the object under it (truncated it), or its file system is full or failing; close this end and set up a new one",
		ErrCorrupt, what, m.size)
	m.fault.CompareAndSwap(nil, &err)
	return *m.fault.Load()
}

// access runs f on m's memory, under the fault guard if m needs it. It
// returns m's fault error, or f's.
func (m *Mapping) access(f func() error) error {
	if m.guard {
		return m.guarded(f)
	}
	return f()
}

// guarded runs f under the fault guard.
func (m *Mapping) guarded(f func() error) (err error) {
	if err := m.faultErr(); err != nil {
		return err
	}
	defer m.catchFault(&err, debug.SetPanicOnFault(true))
	return f()
}

// reserve allocates the first size bytes of the object behind fd, just
// created, in its file system (fallocate; zeros written where the file
// system has no fallocate), so that a full file system is an error now,
// not a SIGBUS at the first touch of the memory. dir names the directory
// whose file system holds the object, for the error ("" for a memfd); the
// error wraps the errno (unix.ENOSPC when the file system is full).
func reserve(fd int, size int64, dir string) error {
	err := fallocate(fd, size)
	if err == unix.EOPNOTSUPP {
		err = writeZeros(fd, size)
	}
	switch {
	case err == nil:
		return nil
	case dir == "" && (err == unix.ENOSPC || err == unix.ENOMEM):
		return fmt.Errorf("cannot reserve %d bytes of memory for the memfd: out of memory (a memory cgroup limit?): %w", size, err)
	case err == unix.ENOSPC || err == unix.EDQUOT:
		total, hint := "", ""
		var st unix.Statfs_t
		if unix.Fstatfs(fd, &st) == nil {
			total = fmt.Sprintf(" (%d bytes in all)", st.Blocks*uint64(st.Bsize))
		}
		if dir == shmDir[:len(shmDir)-1] {
			hint = " (mount -o remount,size=... " + dir + ")"
		}
		return fmt.Errorf("cannot reserve %d bytes: the file system of %s%s is full: free space there or make it larger%s: %w", size, dir, total, hint, err)
	}
	return fmt.Errorf("cannot reserve %d bytes in %s: %w", size, dir, err)
}

// fallocate allocates the first size bytes of fd, retrying when a signal
// interrupts it (tmpfs gives up with EINTR).
func fallocate(fd int, size int64) error {
	for {
		err := unix.Fallocate(fd, 0, 0, size)
		if err != unix.EINTR {
			return err
		}
	}
}

// writeZeros writes size zero bytes at the start of fd: the allocation of
// a file system without fallocate.
func writeZeros(fd int, size int64) error {
	zeros := make([]byte, min(size, 64<<10))
	for off := int64(0); off < size; {
		n, err := unix.Pwrite(fd, zeros[:min(size-off, int64(len(zeros)))], off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return err
		case n == 0:
			return io.ErrShortWrite
		}
		off += int64(n)
	}
	return nil
}
