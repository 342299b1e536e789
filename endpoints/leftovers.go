package endpoints

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/ipcchan/internal/sys"
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
//     ObjectKey: keys 0x6C000000 to 0x6FFFFFFF, whose bits hold the pid
//     (bits 4 to 25) and a per-process sequence (bits 0 to 3).
//   - Unix socket files made by Listen and ListenPacket, found in the
//     directories given to Leftovers: a socket file whose ".lock"
//     companion nobody holds belongs to a listener that is gone.

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
// CreateSysVShm). Keys repeat after 16 calls in one process; a create with
// a key still in use fails with os.ErrExist, so take another. Safe for
// concurrent use.
func ObjectKey() Key {
	seq := objectSeq.Add(1) & 0xF
	return Key(objectKeyBase | (os.Getpid()&objectKeyPID)<<4 | int(seq))
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
	Owner int    // the pid that made it; 0 where none is recorded (socket files)
	Alive bool   // whether its owner is still running (or, for a socket, still listening)

	remove func() error
}

// ErrOwnerAlive is wrapped by Leftover.Remove's error for an object whose
// owner still runs.
var ErrOwnerAlive = errors.New("its owner is still running")

// Remove removes the object if its owner is gone, and returns an error
// wrapping ErrOwnerAlive otherwise. It is safe to call on objects that
// have disappeared since they were listed (that is not an error).
func (l Leftover) Remove() error {
	if l.remove == nil {
		return fmt.Errorf("remove %s %q: a Leftover is only what Leftovers returns", l.Kind, l.Name)
	}
	if l.Alive || (l.Owner != 0 && alive(l.Owner)) {
		return fmt.Errorf("%s %s: %w (pid %d)", l.Kind, l.Name, ErrOwnerAlive, l.Owner)
	}
	if err := l.remove(); err != nil && !errors.Is(err, os.ErrNotExist) && err != unix.EINVAL && err != unix.EIDRM {
		return fmt.Errorf("remove %s %s: %w", l.Kind, l.Name, err)
	}
	return nil
}

// String describes the leftover on one line.
func (l Leftover) String() string {
	state := "owner gone"
	if l.Alive {
		state = "in use"
	}
	owner := "-"
	if l.Owner != 0 {
		owner = strconv.Itoa(l.Owner)
	}
	return fmt.Sprintf("%-10s %-8s %-10s %s", l.Kind, owner, state, l.Name)
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
	var found []Leftover
	var errs []error
	add := func(l Leftover) {
		if l.Owner != 0 {
			l.Alive = alive(l.Owner)
		}
		found = append(found, l)
	}
	if entries, err := os.ReadDir(shmDir); err == nil {
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
			add(Leftover{Kind: kind, Name: path, Owner: owner, remove: func() error { return os.Remove(path) }})
		}
	}
	var fs unix.Statfs_t
	if unix.Statfs("/dev/mqueue", &fs) == nil && fs.Type == mqueueMagic {
		entries, err := os.ReadDir("/dev/mqueue")
		errs = append(errs, err)
		for _, e := range entries {
			if owner := ownerOfName(e.Name()); owner != 0 {
				name := e.Name()
				add(Leftover{Kind: "posix mq", Name: "/" + name, Owner: owner, remove: func() error { return sys.MqUnlink(name) }})
			}
		}
	}
	for _, k := range []struct {
		file, kind string
		rm         func(id int) error
	}{
		{"msg", "sysv mq", func(id int) error { return sys.MsgctlRmid(id) }},
		{"sem", "sysv sem", func(id int) error { _, err := sys.Semctl(id, 0, unix.IPC_RMID, 0); return err }},
		{"shm", "sysv shm", func(id int) error { _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); return err }},
	} {
		rows, err := sysvTable(k.file)
		errs = append(errs, err)
		for _, row := range rows {
			owner := ownerOfKey(row.key)
			if owner == 0 {
				continue
			}
			id := row.id
			add(Leftover{Kind: k.kind, Name: fmt.Sprintf("key %#x id %d", uint32(row.key), id), Owner: owner, remove: func() error { return k.rm(id) }})
		}
	}
	for _, dir := range dirs {
		socks, err := staleSockets(dir)
		errs = append(errs, err)
		found = append(found, socks...)
	}
	return found, errors.Join(errs...)
}

type sysvRow struct {
	key int64
	id  int
}

// sysvTable reads /proc/sysvipc/FILE: the key and id of every object.
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
	sc.Scan() // the header: key, then the id
	var rows []sysvRow
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		key, err1 := strconv.ParseInt(fields[0], 10, 64)
		id, err2 := strconv.Atoi(fields[1])
		if err1 != nil || err2 != nil {
			return rows, fmt.Errorf("/proc/sysvipc/%s: unexpected line %q", file, sc.Text())
		}
		rows = append(rows, sysvRow{key, id})
	}
	return rows, sc.Err()
}

// staleSockets finds, in dir, the socket files and lock files of listeners
// that are gone: lock files nobody holds a lock on.
func staleSockets(dir string) ([]Leftover, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var found []Leftover
	for _, e := range entries {
		lockName, ok := strings.CutSuffix(e.Name(), ".lock")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		sock := filepath.Join(dir, lockName)
		lock := sock + ".lock"
		if st, err := os.Lstat(sock); err == nil && st.Mode()&os.ModeSocket == 0 {
			continue // not ours: the name is taken by something else
		}
		l := Leftover{Kind: "socket", Name: sock, Alive: lockHeld(lock)}
		l.remove = func() error {
			fd, err := unix.Open(lock, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
				return fmt.Errorf("%w: a listener took it again", ErrOwnerAlive)
			}
			if st, err := os.Lstat(sock); err == nil && st.Mode()&os.ModeSocket != 0 {
				os.Remove(sock)
			}
			return os.Remove(lock)
		}
		found = append(found, l)
	}
	return found, nil
}

// lockHeld reports whether a process holds a flock on path.
func lockHeld(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return true
	}
	unix.Flock(fd, unix.LOCK_UN)
	return false
}
