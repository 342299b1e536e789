package endpoints_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
)

// A process that makes one object of every kind, named or keyed so that
// Leftovers can attribute them, and dies without removing any.
func init() {
	childRoles["make-leftovers"] = func() error {
		if _, err := endpoints.CreateShm(endpoints.ObjectName("shm"), 4096); err != nil {
			return err
		}
		if _, err := endpoints.CreateSemaphore(endpoints.ObjectName("sem"), 1); err != nil {
			return err
		}
		mq := endpoints.ObjectName("mq")
		if err := endpoints.CreateMQ(mq, endpoints.MQAttr{MaxMsgs: 1, MsgSize: 64}); err != nil {
			return err
		}
		if _, err := endpoints.CreateSysVQueue(endpoints.ObjectKey()); err != nil {
			return err
		}
		if _, err := endpoints.CreateSemSet(endpoints.ObjectKey(), 1); err != nil {
			return err
		}
		if _, err := endpoints.CreateSysVShm(endpoints.ObjectKey(), 4096); err != nil {
			return err
		}
		if _, err := endpoints.Listen[int, int](context.Background(), "unix", filepath.Join(os.Getenv("LEFTOVER_DIR"), "srv.sock")); err != nil {
			return err
		}
		os.Stdout.WriteString("made " + mq + "\n")
		for { // until killed (not select {}: a deadlock exit without cgo or on 386)
			time.Sleep(time.Hour)
		}
	}
}

func TestLeftoversOfADeadProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := helperCmd(t, "make-leftovers", "LEFTOVER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	mq, ok := strings.CutPrefix(strings.TrimSpace(line), "made ")
	if err != nil || !ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper: %q, %v", line, err)
	}
	// Listed only where /dev/mqueue is mounted: never left behind.
	defer endpoints.RemoveMQ(mq)
	pid := cmd.Process.Pid
	// While it runs, everything is listed as in use and nothing is removed.
	mine := func() []endpoints.Leftover {
		all, err := endpoints.Leftovers(dir)
		if err != nil {
			t.Logf("Leftovers: %v", err)
		}
		var ls []endpoints.Leftover
		for _, l := range all {
			if l.Owner == pid || l.Kind == "socket" {
				ls = append(ls, l)
			}
		}
		return ls
	}
	running := mine()
	for _, l := range running {
		if !l.Alive {
			t.Errorf("%v: listed as gone while its owner runs", l)
		}
		if err := l.Remove(); !errors.Is(err, endpoints.ErrOwnerAlive) {
			t.Errorf("%v: Remove = %v, want ErrOwnerAlive", l, err)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()

	dead := mine()
	kinds := map[string]bool{}
	for _, l := range dead {
		kinds[l.Kind] = true
		if l.Alive {
			t.Errorf("%v: listed as in use after its owner died", l)
		}
		if err := l.Remove(); err != nil {
			t.Errorf("Remove %v: %v", l, err)
		}
	}
	want := []string{"posix shm", "semaphore", "sysv mq", "sysv sem", "sysv shm", "socket"}
	if mqueueMounted() {
		want = append(want, "posix mq")
	}
	for _, k := range want {
		if !kinds[k] {
			t.Errorf("no %s found among %v", k, dead)
		}
	}
	if len(running) != len(dead) {
		t.Errorf("%d objects listed while it ran, %d after", len(running), len(dead))
	}
	if left := mine(); len(left) != 0 {
		t.Fatalf("still there after Remove: %v", left)
	}
}

// mqueueMounted reports whether the mqueue file system is at /dev/mqueue.
func mqueueMounted() bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	return err == nil && strings.Contains(string(b), " /dev/mqueue ")
}

func TestObjectNamesAndKeys(t *testing.T) {
	name := endpoints.ObjectName("my job/1")
	if !strings.HasPrefix(name, "/ipcchan-") || strings.Count(name, "/") != 1 || !strings.Contains(name, "-my-job-1-") {
		t.Errorf("ObjectName = %q", name)
	}
	a, b := endpoints.ObjectKey(), endpoints.ObjectKey()
	if a == b || a>>26 != b>>26 || a>>26 != 0x1B {
		t.Errorf("ObjectKey = %#x, %#x", a, b)
	}
}
