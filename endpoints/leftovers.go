package endpoints

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
	"github.com/ipcchan/go/ipcchan"
)

// Kernel objects outlive the processes that make them: a program killed
// before it unlinks a queue or removes a segment leaves it behind. So that
// such leftovers can be found and removed (Leftovers, and the command
// `go run ./cmd/ipcchan ls|rm`), the objects ipcchan names carry the pid of
// the process that made them:
//
//   - POSIX shared memory, semaphores and queues named by ObjectName:
//     "/ipcchan-PID-LABEL-RANDOM" (a label may hold dashes but not only
//     digits; any name of the form "ipcchan-[WORD-...]PID-..." is
//     recognised, the first all-digit field being the pid). MQPair's
//     transient queue and CreateSemaphore's temporary file are named so.
//   - SysV queues, semaphore sets and segments created with a key from
//     ObjectKey (or CreateWithObjectKey): keys 0x6C000000 to 0x6FFFFFFF,
//     whose bits hold the pid (bits 4 to 25) and a per-process sequence
//     (bits 0 to 3).
//   - Unix socket files made by Listen and ListenPacket, found in the
//     directories given to Leftovers: a socket file whose ".lock"
//     companion nobody holds belongs to a listener that is gone.
//
// The pid in a name or key proves nothing, since anyone can name an object
// so: Leftover.Remove removes only the objects of the user that calls it.

// objectKeyBase marks the keys ObjectKey returns (top 6 bits 011011).
const (
	objectKeyBase = 0x6C00_0000
	objectKeyMask = 0xFC00_0000
	objectKeyPID  = 0x3F_FFFF // 22 bits: Linux's largest pid_max is 2^22
)

var objectSeq atomic.Uint32

// ObjectName returns a fresh name for a POSIX object (shared memory, a
// semaphore or a queue: "/ipcchan-PID-LABEL-RANDOM") that Leftovers can
// attribute to this process. label, which may be empty, says what the
// object is for; it is cleaned to letters, digits and dashes. Safe for
// concurrent use.
func ObjectName(label string) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, label)
	if clean != "" {
		clean += "-"
	}
	return fmt.Sprintf("/ipcchan-%d-%s%s", os.Getpid(), clean, randomHex(6))
}

// ObjectKey returns a SysV key in ipcchan's range that holds this
// process's pid, so that Leftovers can attribute the queue, set or segment
// created with it (with O_EXCL semantics: CreateSysVQueue, CreateSemSet,
// CreateSysVShm). A process has 16 such keys, which ObjectKey hands out in
// turn; a create with one another process holds fails with an error
// wrapping os.ErrExist, and any user can take a key of any pid. So create
// with [CreateWithObjectKey], which tries this process's keys until one is
// free. Safe for concurrent use.
func ObjectKey() Key { return objectKeyFor(os.Getpid(), objectSeq.Add(1)) }

// objectKeys is how many keys ObjectKey has for one process.
const objectKeys = 16

// objectKeyFor returns pid's ObjectKey of sequence number seq (mod 16).
func objectKeyFor(pid int, seq uint32) Key {
	return Key(objectKeyBase | (pid&objectKeyPID)<<4 | int(seq%objectKeys))
}

// CreateWithObjectKey creates an object with create, given keys from
// ObjectKey, and returns it with the key it took. A key is tried again with
// the next of this process's keys while create's error says the key is
// taken (it wraps fs.ErrExist, or fs.ErrPermission: another user's object
// there), each key at most once: any user can make objects under the keys
// of any pid, so the first may well be held. If all 16 are held, the error
// wraps fs.ErrExist and says by whom; create's other errors are returned at
// once. For example:
//
//	q, key, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SysVQueue, error) {
//		return endpoints.CreateSysVQueue(k)
//	})
//
// Safe for concurrent use (create must be, for calls that run at once).
func CreateWithObjectKey[T any](create func(Key) (T, error)) (T, Key, error) {
	pid := os.Getpid()
	start := objectSeq.Add(1)
	tried := make([]Key, 0, objectKeys)
	for i := range uint32(objectKeys) {
		key := objectKeyFor(pid, start+i)
		v, err := create(key)
		if err == nil {
			return v, key, nil
		}
		if !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrPermission) {
			var zero T
			return zero, key, err
		}
		tried = append(tried, key)
	}
	var zero T
	return zero, IPCPrivate, &ipcchan.OpError{Op: "create", Endpoint: fmt.Sprintf("sysv object keys %#x to %#x", uint32(objectKeyFor(pid, 0)), uint32(objectKeyFor(pid, objectKeys-1))),
		Err: fmt.Errorf("%w: all %d keys of this process (pid %d) are taken%s: remove what holds them if it is yours (ipcchan ls), or create with IPCPrivate and hand out the identifier", fs.ErrExist, objectKeys, pid, keyHolders(tried))}
}

// keyHolders says which users hold SysV objects under keys, as
// " (by uid N, ...)", or "" if it cannot tell.
func keyHolders(keys []Key) string {
	var uids []int
	for _, file := range []string{"msg", "sem", "shm"} {
		rows, _ := sysvTable(file)
		for _, row := range rows {
			if slices.Contains(keys, Key(row.key)) && !slices.Contains(uids, row.uid) {
				uids = append(uids, row.uid)
			}
		}
	}
	if len(uids) == 0 {
		return ""
	}
	slices.Sort(uids)
	var b strings.Builder
	for i, uid := range uids {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "uid %d", uid)
	}
	return " (held by " + b.String() + ")"
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ownerOfKey returns the pid held in an ObjectKey, or 0 for another key.
func ownerOfKey(key int64) int {
	if uint32(key)&objectKeyMask != objectKeyBase {
		return 0
	}
	return int(uint32(key)>>4) & objectKeyPID
}

// ownerOfName returns the pid in an ObjectName-style name, or 0.
func ownerOfName(name string) int {
	_, rest, ok := strings.Cut(name, "ipcchan-")
	if !ok {
		return 0
	}
	for _, field := range strings.Split(rest, "-") {
		if pid, err := strconv.Atoi(field); err == nil && field != "" && field[0] != '+' {
			return pid
		}
	}
	return 0
}

// A Leftover is a kernel object ipcchan made, found by Leftovers.
type Leftover struct {
	Kind  string // "posix shm", "semaphore", "posix mq", "sysv mq", "sysv sem", "sysv shm" or "socket"
	Name  string // the path, queue name or "key 0x… id N"
	Owner int    // the pid that made it, as its name or key says; 0 where none is recorded (socket files)
	UID   int    // the user it belongs to: the file's owner (for a socket, its lock file's), a SysV object's owner
	Alive bool   // whether its owner is still running (for a socket: still listening, or its lock cannot be tested)

	cuid   int // a SysV object's creator; UID for files
	remove func(may func(uid, cuid int) error) error
}

// Remove removes the object if its owner process is gone and it belongs to
// this process's effective user (a SysV object: its owner and its
// creator); otherwise it removes nothing and returns an error wrapping
// ErrOwnerAlive, ErrOtherUser or ErrReplaced. It checks the object again
// before removing it: one replaced since it was listed is left alone. It
// is safe to call on objects that have disappeared since they were listed
// (that is not an error), and from several goroutines.
func (l Leftover) Remove() error { return l.removeIf(false) }

// RemoveAnyUser is Remove for an object of any user: for an administrator
// cleaning up after others (removing another user's object takes root,
// or CAP_SYS_ADMIN for SysV objects).
func (l Leftover) RemoveAnyUser() error { return l.removeIf(true) }

func (l Leftover) removeIf(anyUser bool) error {
	if l.remove == nil {
		return fmt.Errorf("remove %s %q: a Leftover is only what Leftovers returns", l.Kind, l.Name)
	}
	may := func(uid, cuid int) error {
		if me := os.Geteuid(); !anyUser && (uid != me || cuid != me) {
			by := ""
			if cuid != uid {
				by = fmt.Sprintf(", made by uid %d", cuid)
			}
			return fmt.Errorf("%w: uid %d%s, not this user (uid %d); left alone whatever pid its name holds (root removes it with RemoveAnyUser, ipcchan rm -all-users)", ErrOtherUser, uid, by, me)
		}
		return nil
	}
	if err := may(l.UID, l.cuid); err != nil {
		return fmt.Errorf("%s %s: %w", l.Kind, l.Name, err)
	}
	if l.Alive || (l.Owner != 0 && alive(l.Owner)) {
		return fmt.Errorf("%s %s: %w (pid %d)", l.Kind, l.Name, ErrOwnerAlive, l.Owner)
	}
	err := l.remove(may)
	switch {
	case err == nil || errors.Is(err, os.ErrNotExist) || err == unix.EINVAL || err == unix.EIDRM:
		return nil
	case errors.Is(err, ErrOwnerAlive) || errors.Is(err, ErrOtherUser) || errors.Is(err, ErrReplaced):
		return fmt.Errorf("%s %s: %w", l.Kind, l.Name, err)
	}
	return fmt.Errorf("remove %s %s: %w", l.Kind, l.Name, err)
}

// String describes the leftover on one line: kind, owning user, pid,
// state, name.
func (l Leftover) String() string {
	state := "owner gone"
	if l.Alive {
		state = "in use"
	}
	owner := "-"
	if l.Owner != 0 {
		owner = strconv.Itoa(l.Owner)
	}
	return fmt.Sprintf("%-10s uid %-6d %-8s %-10s %s", l.Kind, l.UID, owner, state, l.Name)
}

// alive reports whether process pid runs (one of another user counts; a
// zombie, exited but not reaped, does not).
func alive(pid int) bool { return sys.ProcessRunning(pid) }

// Leftovers lists the kernel objects ipcchan named (see ObjectName and
// ObjectKey) that exist now, with whether their owner still runs, and the
// stale socket files in dirs. POSIX queues are listed only where the
// mqueue file system is mounted at /dev/mqueue. It returns what it found
// with an error joining what it could not read. Safe for concurrent use.
func Leftovers(dirs ...string) ([]Leftover, error) {
	found := shmLeftovers()
	queues, err := mqueueLeftovers()
	found = append(found, queues...)
	errs := []error{err}
	for _, k := range sysvKinds {
		objects, err := sysvLeftovers(k.file, k.kind, k.rm)
		found = append(found, objects...)
		errs = append(errs, err)
	}
	for i := range found {
		if found[i].Owner != 0 {
			found[i].Alive = alive(found[i].Owner)
		}
	}
	for _, dir := range dirs {
		socks, err := staleSockets(dir)
		errs = append(errs, err)
		found = append(found, socks...)
	}
	return found, errors.Join(errs...)
}

// shmLeftovers lists the named POSIX shared memory objects and semaphores
// in /dev/shm.
func shmLeftovers() []Leftover {
	entries, err := os.ReadDir(shmDir)
	if err != nil {
		return nil
	}
	var found []Leftover
	for _, e := range entries {
		name := e.Name()
		owner := ownerOfName(name)
		if owner == 0 {
			continue
		}
		kind := "posix shm"
		if strings.HasPrefix(name, "sem.") {
			kind = "semaphore"
		}
		path := shmDir + name
		if l, ok := fileLeftover(kind, path, path, owner, func() error { return unix.Unlink(path) }); ok {
			found = append(found, l)
		}
	}
	return found
}

// mqueueLeftovers lists the named POSIX queues, where the mqueue file
// system is mounted at /dev/mqueue.
func mqueueLeftovers() ([]Leftover, error) {
	var fs unix.Statfs_t
	if unix.Statfs("/dev/mqueue", &fs) != nil || fs.Type != mqueueMagic {
		return nil, nil
	}
	entries, err := os.ReadDir("/dev/mqueue")
	var found []Leftover
	for _, e := range entries {
		name := e.Name()
		if owner := ownerOfName(name); owner != 0 {
			if l, ok := fileLeftover("posix mq", "/"+name, "/dev/mqueue/"+name, owner, func() error { return sys.MqUnlink(name) }); ok {
				found = append(found, l)
			}
		}
	}
	return found, err
}

// sysvKinds are the SysV object tables Leftovers reads, each with how an
// object of it is removed.
var sysvKinds = []struct {
	file, kind string
	rm         func(id int) error
}{
	{"msg", "sysv mq", func(id int) error { return sys.MsgctlRmid(id) }},
	{"sem", "sysv sem", func(id int) error { _, err := sys.Semctl(id, 0, unix.IPC_RMID, 0); return err }},
	{"shm", "sysv shm", func(id int) error { _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); return err }},
}

// sysvLeftovers lists the objects of /proc/sysvipc/FILE whose key ObjectKey
// made; removing one goes through removeSysV.
func sysvLeftovers(file, kind string, rm func(id int) error) ([]Leftover, error) {
	rows, err := sysvTable(file)
	var found []Leftover
	for _, row := range rows {
		owner := ownerOfKey(row.key)
		if owner == 0 {
			continue
		}
		listed := row
		found = append(found, Leftover{
			Kind: kind, Name: fmt.Sprintf("key %#x id %d", uint32(row.key), row.id),
			Owner: owner, UID: row.uid, cuid: row.cuid,
			remove: func(may func(uid, cuid int) error) error { return removeSysV(file, listed, may, rm) },
		})
	}
	return found, err
}

// removeSysV removes the SysV object listed, once it has checked that the
// id was not removed and reused meanwhile (the key is still the one
// listed) and that may allows its owner and creator.
func removeSysV(file string, listed sysvRow, may func(uid, cuid int) error, rm func(id int) error) error {
	rows, err := sysvTable(file)
	if err != nil {
		return err
	}
	for _, now := range rows {
		if now.id != listed.id {
			continue
		}
		if now.key != listed.key {
			return ErrReplaced
		}
		if err := may(now.uid, now.cuid); err != nil {
			return err
		}
		return rm(listed.id)
	}
	return os.ErrNotExist
}

type sysvRow struct {
	key       int64
	id        int
	uid, cuid int
}

// sysvTable reads /proc/sysvipc/FILE: the key, id, owner and creator of
// every object.
func sysvTable(file string) ([]sysvRow, error) {
	f, err := os.Open("/proc/sysvipc/" + file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // a kernel without SysV IPC
		}
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // the header: key, then the id, then others by name
	header := strings.Fields(sc.Text())
	uidCol, cuidCol := slices.Index(header, "uid"), slices.Index(header, "cuid")
	if len(header) < 2 || header[0] != "key" || uidCol < 0 || cuidCol < 0 {
		return nil, fmt.Errorf("/proc/sysvipc/%s: unexpected header %q", file, sc.Text())
	}
	var rows []sysvRow
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) <= max(uidCol, cuidCol) {
			continue
		}
		key, err1 := strconv.ParseInt(fields[0], 10, 64)
		id, err2 := strconv.Atoi(fields[1])
		uid, err3 := strconv.Atoi(fields[uidCol])
		cuid, err4 := strconv.Atoi(fields[cuidCol])
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return rows, fmt.Errorf("/proc/sysvipc/%s: unexpected line %q", file, sc.Text())
		}
		rows = append(rows, sysvRow{key, id, uid, cuid})
	}
	return rows, sc.Err()
}

// fileLeftover describes the POSIX object whose file is at path, if it is
// a regular file. Its remove checks again, just before rm, that the file
// at path is the one listed and whose it is.
func fileLeftover(kind, name, path string, owner int, rm func() error) (Leftover, bool) {
	var listed unix.Stat_t
	if unix.Lstat(path, &listed) != nil || listed.Mode&unix.S_IFMT != unix.S_IFREG {
		return Leftover{}, false // gone, or not an object of ours
	}
	return Leftover{Kind: kind, Name: name, Owner: owner, UID: int(listed.Uid), cuid: int(listed.Uid),
		remove: func(may func(uid, cuid int) error) error {
			var now unix.Stat_t
			if err := unix.Lstat(path, &now); err != nil {
				return err
			}
			if now.Dev != listed.Dev || now.Ino != listed.Ino {
				return ErrReplaced
			}
			if err := may(int(now.Uid), int(now.Uid)); err != nil {
				return err
			}
			return rm()
		}}, true
}

// staleSockets finds, in dir, the socket files and lock files of listeners
// that are gone: lock files nobody holds a lock on. It opens nothing that
// could block or lead elsewhere: no symbolic link, nothing but regular
// lock files and the directory itself, and those without waiting.
func staleSockets(dir string) ([]Leftover, error) {
	dfd, err := openDir(dir)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(dfd), dir)
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var found []Leftover
	for _, e := range entries {
		sockName, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		lockName := e.Name()
		var sock unix.Stat_t
		if err := unix.Fstatat(dfd, sockName, &sock, unix.AT_SYMLINK_NOFOLLOW); err == nil && sock.Mode&unix.S_IFMT != unix.S_IFSOCK {
			continue // not ours: the name is taken by something else
		}
		var listed unix.Stat_t
		if unix.Fstatat(dfd, lockName, &listed, unix.AT_SYMLINK_NOFOLLOW) != nil || listed.Mode&unix.S_IFMT != unix.S_IFREG {
			continue // gone, or not a lock file
		}
		held := true // unless the lock can be tested: another user's may be unreadable
		lfd, now, err := openLockAt(dfd, lockName)
		switch {
		case err == nil && now.Dev == listed.Dev && now.Ino == listed.Ino:
			held, err = flockHeld(lfd)
			held = held || err != nil
			unix.Close(lfd)
		case err == nil:
			unix.Close(lfd)
			continue // replaced meanwhile
		case err != unix.EACCES && err != unix.EPERM:
			continue // not a lock file, or gone
		}
		l := Leftover{Kind: "socket", Name: filepath.Join(dir, sockName), UID: int(listed.Uid), cuid: int(listed.Uid), Alive: held}
		l.remove = func(may func(uid, cuid int) error) error {
			dfd, err := openDir(dir)
			if err != nil {
				return err
			}
			defer unix.Close(dfd)
			lfd, now, err := openLockAt(dfd, lockName)
			if err != nil {
				return err
			}
			defer unix.Close(lfd)
			if now.Dev != listed.Dev || now.Ino != listed.Ino {
				return ErrReplaced
			}
			if err := may(int(now.Uid), int(now.Uid)); err != nil {
				return err
			}
			if err := unix.Flock(lfd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
				return fmt.Errorf("%w: a listener took it again", ErrOwnerAlive)
			}
			var st unix.Stat_t
			if unix.Fstatat(dfd, sockName, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK && may(int(st.Uid), int(st.Uid)) == nil {
				unix.Unlinkat(dfd, sockName, 0)
			}
			return unix.Unlinkat(dfd, lockName, 0)
		}
		found = append(found, l)
	}
	return found, nil
}

// openDir opens the directory at path to read it, without waiting: a FIFO
// or a device there is refused, never opened for reading.
func openDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// openLockAt opens the lock file name in directory dfd for reading, if it
// is a regular file: it looks before it opens, opens without following a
// symbolic link or waiting (a FIFO swapped in meanwhile would otherwise
// wait for a writer for ever), and checks that what it opened is the
// regular file it looked at.
func openLockAt(dfd int, name string) (int, unix.Stat_t, error) {
	var before, st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &before, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return -1, st, err
	}
	if before.Mode&unix.S_IFMT != unix.S_IFREG {
		return -1, st, fmt.Errorf("%s is a %s, not a lock file", name, fileType(before.Mode))
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, st, err
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, st, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Dev != before.Dev || st.Ino != before.Ino {
		unix.Close(fd)
		return -1, st, fmt.Errorf("%s: %w", name, ErrReplaced)
	}
	return fd, st, nil
}

// flockHeld reports whether a process holds a flock on the file fd.
func flockHeld(fd int) (bool, error) {
	switch err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err {
	case nil:
		unix.Flock(fd, unix.LOCK_UN)
		return false, nil
	case unix.EWOULDBLOCK:
		return true, nil
	default:
		return false, err
	}
}
