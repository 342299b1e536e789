package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

// lsJSON runs ls -json with args and decodes its document.
func lsJSON(t *testing.T, args ...string) lsDoc {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(append([]string{"ls", "-json"}, args...), &out, &errb); code != 0 {
		t.Fatalf("ls -json: status %d: %s", code, errb.String())
	}
	var doc lsDoc
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("ls -json printed no JSON document: %v", err)
	}
	if dec.More() {
		t.Fatal("ls -json printed more than one JSON document")
	}
	if doc.Objects == nil || doc.Notes == nil || doc.Errors == nil {
		t.Fatalf("ls -json left out a list: %+v", doc)
	}
	return doc
}

// find returns the object of doc named name.
func find(t *testing.T, doc lsDoc, name string) lsObject {
	t.Helper()
	for _, o := range doc.Objects {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("ls -json does not list %s: %+v", name, doc.Objects)
	return lsObject{}
}

// ls lists live objects with their owner, state and fill: a POSIX queue's
// messages, a SysV queue's messages and bytes, a ring's used bytes; as
// lines and as JSON, saying the same.
func TestLsShowsFill(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	noHello := ipcchan.WithHandshake(false)
	me := os.Geteuid()

	mqName := endpoints.ObjectName("cmdtest-mq")
	if err := endpoints.CreateMQ(mqName, endpoints.MQAttr{MaxMsgs: 4, MsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	defer endpoints.RemoveMQ(mqName)
	mq, err := endpoints.OpenMQSender[[]byte](mqName, noHello)
	if err != nil {
		t.Fatal(err)
	}
	defer mq.Close()

	q, key, err := endpoints.CreateWithObjectKey(func(k endpoints.Key) (*endpoints.SysVQueue, error) { return endpoints.CreateSysVQueue(k) })
	if err != nil {
		t.Fatal(err)
	}
	defer q.Remove()
	sq, err := endpoints.SysVSender[[]byte](q, noHello)
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()

	shmName := endpoints.ObjectName("cmdtest-ring")
	m, err := endpoints.CreateShm(shmName, 256+4096)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Remove()
	defer m.Close()
	if err := endpoints.FormatRing(m); err != nil {
		t.Fatal(err)
	}
	ring, err := endpoints.RingSender[[]byte](m, noHello)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()

	for i := range 3 {
		msg := []byte("message " + strconv.Itoa(i))
		if i < 2 {
			if err := mq.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
		}
		if err := sq.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if err := ring.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}

	doc := lsJSON(t)
	pmq := find(t, doc, mqName)
	if pmq.Kind != "posix mq" || !pmq.OwnerAlive || pmq.OwnerPID != os.Getpid() || pmq.UID != me ||
		pmq.PosixMQ == nil || *pmq.PosixMQ != (posixFill{Messages: 2, MaxMessages: 4, MessageSize: 64}) {
		t.Errorf("the POSIX queue: %+v (%+v)", pmq, pmq.PosixMQ)
	}
	smq := find(t, doc, fmt.Sprintf("key %#x id %d", uint32(key), q.ID()))
	if smq.Kind != "sysv mq" || !smq.OwnerAlive || smq.OwnerPID != os.Getpid() || smq.SysVMQ == nil ||
		smq.SysVMQ.Messages != 3 || smq.SysVMQ.Bytes < 3*len("message 0") || smq.SysVMQ.MaxBytes < smq.SysVMQ.Bytes {
		t.Errorf("the SysV queue: %+v (%+v)", smq, smq.SysVMQ)
	}
	rg := find(t, doc, "/dev/shm"+shmName)
	if rg.Kind != "posix shm" || rg.Ring == nil || rg.Ring.Size != 4096 || rg.Ring.Used < uint64(3*(8+len("message 0"))) ||
		rg.Ring.Used%8 != 0 || rg.Size == nil || *rg.Size != 256+4096 || rg.FillError != "" {
		t.Errorf("the ring: %+v (%+v)", rg, rg.Ring)
	}

	var out, errb bytes.Buffer
	if code := run([]string{"ls"}, &out, &errb); code != 0 {
		t.Fatalf("ls: status %d: %s", code, errb.String())
	}
	for _, want := range []string{
		fmt.Sprintf("posix mq   uid %-6d pid %-8d %-10s %-22s %s\n", me, os.Getpid(), "in use", "2/4 msgs", mqName),
		fmt.Sprintf("sysv mq    uid %-6d pid %-8d %-10s %-22s %s\n", me, os.Getpid(), "in use",
			fmt.Sprintf("3 msgs %d/%d B", smq.SysVMQ.Bytes, smq.SysVMQ.MaxBytes), smq.Name),
		fmt.Sprintf("posix shm  uid %-6d pid %-8d %-10s %-22s %s\n", me, os.Getpid(), "in use",
			fmt.Sprintf("ring %d/4096 B", rg.Ring.Used), rg.Name),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("ls does not print %q:\n%s", want, out.String())
		}
	}
}

// ringHeader returns a ring header for an object of size bytes, with
// head and tail as given.
func ringHeader(size int, head, tail uint64) []byte {
	h := make([]byte, 256)
	copy(h, "IPCCRING")
	binary.NativeEndian.PutUint32(h[8:], 1)
	binary.NativeEndian.PutUint32(h[12:], 256)
	c := uint64(1)
	for c*2 <= uint64(size-256) {
		c *= 2
	}
	binary.NativeEndian.PutUint64(h[16:], c)
	binary.NativeEndian.PutUint32(h[24:], 64)
	binary.NativeEndian.PutUint64(h[64:], head)
	binary.NativeEndian.PutUint64(h[128:], tail)
	return h
}

// Shared memory whose ring header a hostile or broken peer wrote does not
// crash ls or make it print nonsense: what does not hold together is "?"
// with the reason in the JSON.
func TestLsHostileRingHeaders(t *testing.T) {
	cases := []struct {
		name     string
		contents []byte
		fill     string
	}{
		{"magic-only", []byte("IPCCRING"), "8 B"},
		{"short-header", ringHeader(4096+256, 64, 0)[:200], "200 B"},
		{"head-far-ahead", append(ringHeader(4096+256, 1<<62, 0), make([]byte, 4096)...), "?"},
		{"tail-ahead", append(ringHeader(4096+256, 0, 64), make([]byte, 4096)...), "?"},
		{"unaligned", append(ringHeader(4096+256, 12, 0), make([]byte, 4096)...), "?"},
		{"capacity-past-end", ringHeader(4096+256, 64, 0), "?"}, // the header alone: the data area is missing
		{"bad-version", append(append(ringHeader(4096+256, 0, 0)[:8], 9, 0, 0, 0), make([]byte, 4096+244)...), "?"},
		{"valid", append(ringHeader(4096+256, 8192+80, 8192+16), make([]byte, 4096)...), "ring 64/4096 B"},
	}
	names := map[string]string{}
	for _, c := range cases {
		name := endpoints.ObjectName("cmdtest-hostile-" + c.name)
		if err := os.WriteFile("/dev/shm"+name, c.contents, 0o600); err != nil {
			t.Skipf("no /dev/shm: %v", err)
		}
		defer os.Remove("/dev/shm" + name)
		names[c.name] = name
	}
	var out, errb bytes.Buffer
	if code := run([]string{"ls"}, &out, &errb); code != 0 {
		t.Fatalf("ls: status %d: %s", code, errb.String())
	}
	doc := lsJSON(t)
	for _, c := range cases {
		line := ""
		for l := range strings.Lines(out.String()) {
			if strings.HasSuffix(l, names[c.name]+"\n") {
				line = l
			}
		}
		if !strings.Contains(line, " "+c.fill+" ") {
			t.Errorf("%s: ls printed %q, want the fill %q", c.name, line, c.fill)
		}
		obj := find(t, doc, "/dev/shm"+names[c.name])
		if (c.fill == "?") != (obj.FillError != "") || c.fill == "?" && !strings.Contains(obj.FillError, "corrupt") {
			t.Errorf("%s: fill_error %q", c.name, obj.FillError)
		}
	}
}

// isolatedRun runs the command in this process, which isolated started.
func isolatedRun(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// Where the mqueue file system is not mounted, ls and rm run as root mount
// it privately and find the POSIX queues, leaving the process's mounts as
// they were; another user is told that the queues were not looked at.
// With nothing to list, ls says so, ls -gone prints nothing, and ls -json
// gives empty lists.
func TestLsWithoutMqueueMount(t *testing.T) {
	isolated(t, "mqueue", func(dir string, helper func(int, string, ...string) *exec.Cmd) error {
		if mqueueMounted() {
			if err := unix.Unmount(mqueueDir, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("unmount %s: %w", mqueueDir, err)
			}
		}
		var errs []error
		check := func(what string, ok bool, out, stderr string) {
			fmt.Printf("%s:\n%s%s", what, out, stderr)
			if !ok {
				errs = append(errs, fmt.Errorf("%s: wrong output", what))
			}
		}
		out, stderr, code := isolatedRun("ls")
		check("ls of nothing", out == "no ipcchan objects\n" && stderr == "" && code == 0, out, stderr)
		out, stderr, code = isolatedRun("ls", "-gone")
		check("ls -gone of nothing", out == "" && strings.Contains(stderr, "no ipcchan objects whose owner is gone") && code == 0, out, stderr)
		out, stderr, code = isolatedRun("ls", "-json")
		check("ls -json of nothing", code == 0 && stderr == "" && strings.Contains(out, `"objects": []`) && strings.Contains(out, `"notes": []`), out, stderr)

		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		dead := exec.Command("true")
		if err := dead.Run(); err != nil {
			return err
		}
		name := strings.Replace(endpoints.ObjectName("cmdtest-mq"), "-"+strconv.Itoa(os.Getpid())+"-", "-"+strconv.Itoa(dead.Process.Pid)+"-", 1)
		if err := endpoints.CreateMQ(name, endpoints.MQAttr{MaxMsgs: 2, MsgSize: 16}); err != nil {
			return err
		}
		out, stderr, code = isolatedRun("ls")
		check("ls of a queue", code == 0 && strings.Contains(out, "posix mq") && strings.Contains(out, "owner gone") &&
			strings.Contains(out, " 0/2 msgs ") && strings.HasSuffix(out, name+"\n"), out, stderr)
		o, err := helper(otherUID, "cmd", "CMD_ARGS=ls").Output()
		if err != nil {
			return err
		}
		check("ls as another user", strings.Contains(string(o), "POSIX queues not looked at") && strings.Contains(string(o), "root") &&
			!strings.Contains(string(o), name), string(o), "")
		out, stderr, code = isolatedRun("rm")
		check("rm of a queue", code == 0 && strings.Contains(out, "removed posix mq") && strings.Contains(out, name), out, stderr)
		if _, err := endpoints.StatMQ(name); !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("the queue after rm: %v", err))
			endpoints.RemoveMQ(name)
		}
		if now, _ := os.ReadFile("/proc/self/mountinfo"); !bytes.Equal(now, mounts) {
			errs = append(errs, fmt.Errorf("the mounts changed:\n%s\nnow:\n%s", mounts, now))
		}
		if mqueueMounted() {
			errs = append(errs, errors.New("the mqueue file system is mounted at /dev/mqueue now"))
		}
		return errors.Join(errs...)
	})
}
