package endpoints_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan/ipcchantest"
)

type shared struct {
	PID     int32
	Counter int32
}

func init() {
	// count-in-view adds 1000 to the counter of the shared struct in the
	// mapping handed down as "mem" (a descriptor) or named by
	// IPCCHAN_SYSV_SHM (a SysV identifier).
	childRoles["count-in-view"] = func() error {
		var m *endpoints.Mapping
		var err error
		if id := os.Getenv("IPCCHAN_SYSV_SHM"); id != "" {
			n, _ := strconv.Atoi(id)
			m, err = endpoints.AttachSysVShm(n)
		} else {
			f := os.NewFile(3, "mem")
			m, err = endpoints.MappingFromFile(f)
			f.Close()
		}
		if err != nil {
			return err
		}
		defer m.Close()
		v, err := endpoints.ViewOf[shared](m, 0)
		if err != nil {
			return err
		}
		for range 1000 {
			v.Update(func(s *shared) { atomic.AddInt32(&s.Counter, 1) })
		}
		return nil
	}
}

// countInChildren runs three children that each add 1000 to the shared
// counter alongside this process, and checks the total.
func countInChildren(t *testing.T, m *endpoints.Mapping) {
	t.Helper()
	v, err := endpoints.ViewOf[shared](m, 0)
	if err != nil {
		t.Fatal(err)
	}
	var procs []*helperProc
	for range 3 {
		cmd := helperCmd(t, "count-in-view")
		if f, err := m.File(); err == nil {
			cmd.ExtraFiles = []*os.File{f}
			defer f.Close()
		} else {
			cmd.Env = append(cmd.Env, "IPCCHAN_SYSV_SHM="+strconv.Itoa(m.ID()))
		}
		p := &helperProc{cmd: cmd, done: make(chan struct{})}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = cmd.Wait(); close(p.done) }()
		procs = append(procs, p)
	}
	for range 1000 {
		v.Update(func(s *shared) { atomic.AddInt32(&s.Counter, 1) })
	}
	for _, p := range procs {
		if err := p.wait(); err != nil {
			t.Fatalf("child: %v", err)
		}
	}
	if s, _ := v.Load(); s.Counter != 4000 {
		t.Fatalf("counter = %d, want 4000", s.Counter)
	}
}

func TestMappingsSharedAcrossProcesses(t *testing.T) {
	ipcchantest.CheckFDs(t)
	t.Run("memfd", func(t *testing.T) {
		m, err := endpoints.NewMemfd("test", 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		countInChildren(t, m)
	})
	t.Run("posix-shm", func(t *testing.T) {
		name := fmt.Sprintf("/ipcchan-test-%d", os.Getpid())
		m, err := endpoints.CreateShm(name, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		defer m.Remove()
		if fi, err := os.Stat("/dev/shm" + name); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("/dev/shm%s: %v, %v; want mode 0600", name, fi.Mode(), err)
		}
		if _, err := endpoints.CreateShm(name, 4096); !errors.Is(err, os.ErrExist) {
			t.Fatalf("creating it again: %v, want os.ErrExist", err)
		}
		m2, err := endpoints.OpenShm(name)
		if err != nil || m2.Len() != 4096 {
			t.Fatalf("OpenShm: %v, %v", m2, err)
		}
		m2.Close()
		countInChildren(t, m)
	})
	t.Run("sysv-shm", func(t *testing.T) {
		m, err := endpoints.CreateSysVShm(endpoints.IPCPrivate, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		defer m.Remove()
		countInChildren(t, m)
	})
	t.Run("file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "mapped")
		m, err := endpoints.CreateFileMapping(path, 4096)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		countInChildren(t, m)
		if err := m.Sync(); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if len(b) != 4096 || b[4] != 4000%256 || b[5] != 4000/256 {
			t.Fatalf("the file does not hold the counter: % x", b[:8])
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Fatalf("mode %v", fi.Mode())
		}
	})
}

func TestMappingRefusals(t *testing.T) {
	ipcchantest.CheckFDs(t)
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, make([]byte, 64), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(target, link)
	if _, err := endpoints.OpenFileMapping(link); err == nil {
		t.Error("a symbolic link was mapped")
	}
	if _, err := endpoints.CreateFileMapping(target, 64); !errors.Is(err, os.ErrExist) {
		t.Errorf("creating over an existing file: %v", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := endpoints.OpenFileMapping(empty); !errors.Is(err, endpoints.ErrMappingSize) {
		t.Errorf("mapping an empty file: %v", err)
	}
	for _, bad := range []string{"noslash", "/a/b", "/"} {
		if _, err := endpoints.CreateShm(bad, 64); !errors.Is(err, endpoints.ErrInvalidName) {
			t.Errorf("CreateShm(%q): %v", bad, err)
		}
	}
	if _, err := endpoints.NewMemfd("x", 0); !errors.Is(err, endpoints.ErrMappingSize) {
		t.Errorf("a zero-size memfd: %v", err)
	}
	m, err := endpoints.NewMemfd("x", 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := endpoints.ViewOf[struct{ P *int }](m, 0); err == nil {
		t.Error("a view of a pointer was allowed")
	}
	if _, err := endpoints.ViewOf[string](m, 0); err == nil {
		t.Error("a view of a string was allowed")
	}
	if _, err := endpoints.ViewOf[int64](m, int(unsafe.Alignof(int64(0)))/2); err == nil { // int64 aligns to 4 on 32-bit
		t.Error("a misaligned view was allowed")
	}
	if _, err := endpoints.ViewOf[[9]int64](m, 0); !errors.Is(err, endpoints.ErrMappingSize) {
		t.Errorf("a view past the end: %v", err)
	}
	v, err := endpoints.ViewOf[shared](m, 8)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if _, err := v.Load(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Load after Close: %v, want os.ErrClosed", err)
	}
	if m.Bytes() != nil || m.Len() != 0 {
		t.Error("Bytes after Close")
	}
	if _, err := m.File(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("File after Close: %v", err)
	}
}
