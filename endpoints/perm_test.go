package endpoints_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

// The uid the permission tests run their other user's processes as.
const otherUID = ipcchantest.OtherUID

// otherUser returns a command that runs this test binary as role under
// otherUID, or skips t when this process may not change its uid.
func otherUser(t *testing.T, role string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := ipcchantest.AsOtherUser(t, append([]string{envChild + "=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	return cmd
}

// sharedDir returns a world-writable, sticky directory, like /tmp.
func sharedDir(t *testing.T) string {
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o1777)
	return dir
}

func keyEnv(name string, k endpoints.Key) string { return fmt.Sprintf("%s=%d", name, int(k)) }

func envKey(name string) endpoints.Key {
	n, _ := strconv.Atoi(os.Getenv(name))
	return endpoints.Key(n)
}

func init() {
	// probe tries to use each object as another user, and says how it went.
	childRoles["perm-probe"] = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		try := func(what string, err error) {
			if err == nil {
				fmt.Printf("%s ok\n", what)
			} else {
				fmt.Printf("%s denied: %v\n", what, err)
			}
		}
		_, err := endpoints.OpenShm(os.Getenv("P_SHM"))
		try("shm", err)
		_, err = endpoints.OpenSemaphore(os.Getenv("P_SEM"))
		try("semaphore", err)
		_, err = endpoints.OpenMQSender[int](os.Getenv("P_MQ"))
		try("mq", err)
		_, err = endpoints.OpenFIFOSender[int](ctx, os.Getenv("P_FIFO"))
		try("fifo", err)
		_, err = endpoints.Dial[int, int](ctx, "unix", os.Getenv("P_SOCK"))
		try("socket", err)
		q, err := endpoints.OpenSysVQueue(envKey("P_SYSVQ"))
		if err == nil {
			var tx *ipcchan.Sender[int]
			if tx, err = endpoints.SysVSender[int](q, ipcchan.WithLinger(time.Millisecond)); err == nil {
				err = tx.TrySend(1)
				tx.Close()
			}
		}
		try("sysv mq", err)
		_, err = endpoints.OpenSysVShm(envKey("P_SYSVSHM"))
		try("sysv shm", err)
		set, err := endpoints.OpenSemSet(envKey("P_SEMSET"))
		if err == nil {
			err = set.Op(ctx, endpoints.SemOp{Num: 0, Delta: 1})
		}
		try("sysv sem", err)
		return nil
	}
	// squat makes, as another user, world-writable objects under the
	// names the test will then try to create.
	childRoles["perm-squat"] = func() error {
		all := ipcchan.WithPerm(0o666)
		if _, err := endpoints.CreateShm(os.Getenv("P_SHM"), 64, all); err != nil {
			return err
		}
		if _, err := endpoints.CreateSemaphore(os.Getenv("P_SEM"), 0, all); err != nil {
			return err
		}
		if err := endpoints.CreateMQ(os.Getenv("P_MQ"), endpoints.MQAttr{MaxMsgs: 1, MsgSize: 64}, all); err != nil {
			return err
		}
		if err := endpoints.CreateFIFO(os.Getenv("P_FIFO"), all); err != nil {
			return err
		}
		if _, err := endpoints.CreateSysVQueue(envKey("P_SYSVQ"), all); err != nil {
			return err
		}
		if _, err := endpoints.CreateSysVShm(envKey("P_SYSVSHM"), 64, all); err != nil {
			return err
		}
		if _, err := endpoints.CreateSemSet(envKey("P_SEMSET"), 1, all); err != nil {
			return err
		}
		// A socket file and its lock, left as a crashed listener leaves them.
		if _, err := endpoints.Listen[int, int](context.Background(), "unix", os.Getenv("P_SOCK"), all); err != nil {
			return err
		}
		os.Exit(0)
		return nil
	}
}

// permObjects names one object of each kind for a test.
type permObjects struct {
	shm, sem, mq, fifo, sock string
	sysvq, sysvshm, semset   endpoints.Key
	env                      []string
}

func newPermObjects(t *testing.T, dir string) *permObjects {
	o := &permObjects{
		shm: endpoints.ObjectName("perm-shm"), sem: endpoints.ObjectName("perm-sem"), mq: endpoints.ObjectName("perm-mq"),
		fifo: filepath.Join(dir, "fifo"), sock: filepath.Join(dir, "sock"),
		sysvq: endpoints.ObjectKey(), sysvshm: endpoints.ObjectKey(), semset: endpoints.ObjectKey(),
	}
	o.env = []string{"P_SHM=" + o.shm, "P_SEM=" + o.sem, "P_MQ=" + o.mq, "P_FIFO=" + o.fifo, "P_SOCK=" + o.sock,
		keyEnv("P_SYSVQ", o.sysvq), keyEnv("P_SYSVSHM", o.sysvshm), keyEnv("P_SEMSET", o.semset)}
	t.Cleanup(func() {
		endpoints.RemoveShm(o.shm)
		endpoints.RemoveSemaphore(o.sem)
		endpoints.RemoveMQ(o.mq)
		if q, err := endpoints.OpenSysVQueue(o.sysvq); err == nil {
			q.Remove()
		}
		if m, err := endpoints.OpenSysVShm(o.sysvshm); err == nil {
			m.Remove()
			m.Close()
		}
		if s, err := endpoints.OpenSemSet(o.semset); err == nil {
			s.Remove()
		}
	})
	return o
}

// Objects made with the defaults can be neither read nor written by
// another user.
func TestDefaultPermissionsKeepOtherUsersOut(t *testing.T) {
	ctx := testCtx(t)
	dir := sharedDir(t)
	o := newPermObjects(t, dir)
	cmd := otherUser(t, "perm-probe", o.env...)

	m, err := endpoints.CreateShm(o.shm, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s, err := endpoints.CreateSemaphore(o.sem, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := endpoints.CreateMQ(o.mq, endpoints.MQAttr{MaxMsgs: 1, MsgSize: 64}); err != nil {
		t.Fatal(err)
	}
	if err := endpoints.CreateFIFO(o.fifo); err != nil {
		t.Fatal(err)
	}
	ln, err := endpoints.Listen[int, int](ctx, "unix", o.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := endpoints.CreateSysVQueue(o.sysvq); err != nil {
		t.Fatal(err)
	}
	shm, err := endpoints.CreateSysVShm(o.sysvshm, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Close()
	if _, err := endpoints.CreateSemSet(o.semset, 1); err != nil {
		t.Fatal(err)
	}

	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		lines++
		line := sc.Text()
		if !strings.Contains(line, " denied: ") || !strings.Contains(line, "permission denied") {
			t.Errorf("another user: %s", line)
		} else {
			t.Log(line)
		}
	}
	if lines != 8 {
		t.Fatalf("the probe reported %d objects, want 8:\n%s", lines, out)
	}
}

// Objects another user made first under our names, however open they
// are, are refused by our creates, never used.
func TestSquattedNamesAreRefused(t *testing.T) {
	ctx := testCtx(t)
	dir := sharedDir(t)
	o := newPermObjects(t, dir)
	cmd := otherUser(t, "perm-squat", o.env...)
	if err := cmd.Run(); err != nil {
		t.Fatalf("squatter: %v", err)
	}
	defer os.Remove(o.sock)
	defer os.Remove(o.sock + ".lock")
	refused := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: another user's object was taken over", what)
		} else if !errors.Is(err, fs.ErrExist) && !errors.Is(err, fs.ErrPermission) {
			t.Errorf("%s: %v, want an error wrapping fs.ErrExist or fs.ErrPermission", what, err)
		} else {
			t.Logf("%s refused: %v", what, err)
		}
	}
	m, err := endpoints.CreateShm(o.shm, 64)
	if err == nil {
		m.Close()
	}
	refused("posix shm", err)
	s, err := endpoints.CreateSemaphore(o.sem, 0)
	if err == nil {
		s.Close()
	}
	refused("semaphore", err)
	refused("posix mq", endpoints.CreateMQ(o.mq, endpoints.MQAttr{MaxMsgs: 1, MsgSize: 64}))
	refused("fifo", endpoints.CreateFIFO(o.fifo))
	_, err = endpoints.CreateSysVQueue(o.sysvq)
	refused("sysv mq", err)
	shm, err := endpoints.CreateSysVShm(o.sysvshm, 64)
	if err == nil {
		shm.Close()
	}
	refused("sysv shm", err)
	_, err = endpoints.CreateSemSet(o.semset, 1)
	refused("sysv sem", err)
	ln, err := endpoints.Listen[int, int](ctx, "unix", o.sock)
	if err == nil {
		ln.Close()
	}
	refused("socket", err)
}
