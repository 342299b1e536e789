package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/internal/sys"
)

type lsOptions struct {
	gone bool // only objects whose owner is gone
	json bool // one JSON document
}

// lsDoc is the JSON document ls -json prints (its schema is in helpLs).
type lsDoc struct {
	Objects []lsObject `json:"objects"`
	Notes   []string   `json:"notes"`
	Errors  []string   `json:"errors"`
}

// lsObject is one object of lsDoc.
type lsObject struct {
	Kind       string     `json:"kind"`
	Name       string     `json:"name"`
	OwnerPID   int        `json:"owner_pid"`
	OwnerAlive bool       `json:"owner_alive"`
	UID        int        `json:"uid"`
	Size       *int64     `json:"size,omitempty"`
	PosixMQ    *posixFill `json:"posix_mq,omitempty"`
	SysVMQ     *sysvFill  `json:"sysv_mq,omitempty"`
	Ring       *ringFill  `json:"ring,omitempty"`
	FillError  string     `json:"fill_error,omitempty"`
}

type posixFill struct {
	Messages    int `json:"messages"`     // mq_curmsgs
	MaxMessages int `json:"max_messages"` // mq_maxmsg
	MessageSize int `json:"message_size"` // mq_msgsize
}

type sysvFill struct {
	Messages int `json:"messages"`  // msg_qnum
	Bytes    int `json:"bytes"`     // msg_cbytes
	MaxBytes int `json:"max_bytes"` // msg_qbytes
}

type ringFill struct {
	Used uint64 `json:"used"` // bytes of records not yet received
	Size uint64 `json:"size"` // bytes of the data area
}

// ls lists the objects found in dirs and the kernel's tables: every one,
// or (gone) those whose owner is gone, as lines or one JSON document.
// note says what could not be looked at.
func ls(dirs []string, o lsOptions, note string, stdout, stderr io.Writer) int {
	status := 0
	doc := lsDoc{Objects: []lsObject{}, Notes: []string{}, Errors: []string{}}
	if note != "" {
		doc.Notes = append(doc.Notes, note)
	}
	found, err := endpoints.Leftovers(dirs...)
	if err != nil {
		doc.Errors = append(doc.Errors, err.Error())
		status = 1
	}
	for _, l := range found {
		if !o.gone || !l.Alive {
			doc.Objects = append(doc.Objects, describe(l))
		}
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(doc)
		return status
	}
	for _, n := range doc.Notes {
		fmt.Fprintf(stderr, "ipcchan ls: %s\n", n)
	}
	for _, e := range doc.Errors {
		fmt.Fprintf(stderr, "ipcchan: %s\n", e)
	}
	switch {
	case len(doc.Objects) > 0:
	case o.gone: // nothing on standard output: scripts test for that
		fmt.Fprintln(stderr, "ipcchan ls: no ipcchan objects whose owner is gone")
	default:
		fmt.Fprintln(stdout, "no ipcchan objects")
	}
	for _, obj := range doc.Objects {
		fmt.Fprintln(stdout, obj.line())
	}
	return status
}

// line is how ls prints obj: kind, owning user, owner pid, state, fill,
// name.
func (obj lsObject) line() string {
	owner, state := "-", "owner gone"
	if obj.OwnerPID != 0 {
		owner = strconv.Itoa(obj.OwnerPID)
	}
	if obj.OwnerAlive {
		state = "in use"
	}
	fill := "-"
	switch {
	case obj.FillError != "":
		fill = "?"
	case obj.PosixMQ != nil:
		fill = fmt.Sprintf("%d/%d msgs", obj.PosixMQ.Messages, obj.PosixMQ.MaxMessages)
	case obj.SysVMQ != nil:
		fill = fmt.Sprintf("%d msgs %d/%d B", obj.SysVMQ.Messages, obj.SysVMQ.Bytes, obj.SysVMQ.MaxBytes)
	case obj.Ring != nil:
		fill = fmt.Sprintf("ring %d/%d B", obj.Ring.Used, obj.Ring.Size)
	case obj.Size != nil:
		fill = fmt.Sprintf("%d B", *obj.Size)
	}
	return fmt.Sprintf("%-10s uid %-6d pid %-8s %-10s %-22s %s", obj.Kind, obj.UID, owner, state, fill, obj.Name)
}

// describe returns l with how full it is: a queue's messages, a ring's
// bytes, a segment's size. What cannot be read is said in FillError.
func describe(l endpoints.Leftover) lsObject {
	obj := lsObject{Kind: l.Kind, Name: l.Name, OwnerPID: l.Owner, OwnerAlive: l.Alive, UID: l.UID}
	var err error
	switch l.Kind {
	case "posix mq":
		var st endpoints.MQStats
		if st, err = endpoints.StatMQ(l.Name); err == nil {
			obj.PosixMQ = &posixFill{st.Messages, st.MaxMsgs, st.MsgSize}
		}
	case "sysv mq":
		err = sysvQueueFill(&obj)
	case "posix shm":
		err = shmFileFill(&obj, l.Name)
	case "sysv shm":
		err = sysvShmFill(&obj)
	}
	if err != nil {
		obj.FillError = err.Error()
	}
	return obj
}

// sysvID reads the key and id from a SysV leftover's name, "key 0x… id N".
func sysvID(name string) (key uint32, id int, err error) {
	if _, err := fmt.Sscanf(name, "key %v id %d", &key, &id); err != nil {
		return 0, 0, fmt.Errorf("%q: not a SysV object's name", name)
	}
	return key, id, nil
}

// sysvQueueFill reads a SysV queue's messages and bytes (IPC_STAT).
func sysvQueueFill(obj *lsObject) error {
	key, id, err := sysvID(obj.Name)
	if err != nil {
		return err
	}
	var ds sys.MsqidDs
	if err := sys.MsgctlStat(id, &ds); err != nil {
		return fmt.Errorf("msgctl IPC_STAT: %w", err)
	}
	if uint32(ds.Perm.Key) != key {
		return fmt.Errorf("the queue was replaced since it was listed")
	}
	obj.SysVMQ = &sysvFill{int(ds.Qnum), int(ds.Cbytes), int(ds.Qbytes)}
	return nil
}

// shmFileFill reads the size of the POSIX shared memory object at path
// and, if it holds a ring, how full the ring is. It reads the header with
// pread, not through a mapping: a peer that truncates the object makes a
// read come up short, where a mapping would fault. It opens nothing but a
// regular file, without following a link or waiting.
func shmFileFill(obj *lsObject, path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is no longer a regular file", path)
	}
	obj.Size = &st.Size
	header := make([]byte, endpoints.RingHeaderSize)
	n, err := unix.Pread(fd, header, 0)
	if err != nil {
		return err
	}
	return ringFillOf(obj, header[:max(n, 0)], st.Size)
}

// sysvShmFill reads a SysV segment's size and, if it holds a ring, how
// full the ring is, through a read-only attachment (a segment cannot
// shrink under it).
func sysvShmFill(obj *lsObject) error {
	key, id, err := sysvID(obj.Name)
	if err != nil {
		return err
	}
	var ds unix.SysvShmDesc
	if _, err := unix.SysvShmCtl(id, unix.IPC_STAT, &ds); err != nil {
		return fmt.Errorf("shmctl IPC_STAT: %w", err)
	}
	if uint32(ds.Perm.Key) != key {
		return fmt.Errorf("the segment was replaced since it was listed")
	}
	size := int64(ds.Segsz)
	obj.Size = &size
	mem, err := unix.SysvShmAttach(id, 0, unix.SHM_RDONLY)
	if err != nil {
		return fmt.Errorf("shmat read-only: %w", err)
	}
	defer unix.SysvShmDetach(mem)
	header := make([]byte, endpoints.RingHeaderSize)
	return ringFillOf(obj, header[:copy(header, mem)], int64(len(mem)))
}

// ringFillOf sets obj's ring fill if header (the first bytes of an object
// of size bytes) is a ring's.
func ringFillOf(obj *lsObject, header []byte, size int64) error {
	used, capacity, isRing, err := endpoints.RingFill(header, size)
	if isRing && err == nil {
		obj.Ring = &ringFill{used, capacity}
	}
	return err
}
