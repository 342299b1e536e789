package endpoints_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/endpoints"
	"github.com/ipcchan/go/ipcchan"
)

func fifoPath(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jobs")
	if err := endpoints.CreateFIFO(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCreateFIFOIsPrivateAndExclusive(t *testing.T) {
	old := unix.Umask(0)
	defer unix.Umask(old)
	path := fifoPath(t)
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&fs.ModeNamedPipe == 0 || st.Mode().Perm() != 0o600 {
		t.Fatalf("created %v, want a FIFO with mode 0600", st.Mode())
	}
	if err := endpoints.CreateFIFO(path); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second CreateFIFO = %v, want fs.ErrExist", err)
	}
	shared := filepath.Join(t.TempDir(), "shared")
	if err := endpoints.CreateFIFO(shared, ipcchan.WithPerm(0o660)); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Lstat(shared); st.Mode().Perm() != 0o660 {
		t.Fatalf("WithPerm(0660) made %v", st.Mode().Perm())
	}
	if err := endpoints.RemoveFIFO(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("FIFO still there after RemoveFIFO: %v", err)
	}
}

func TestFIFORefusesSymlinksAndOtherFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	target := fifoPath(t)
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := endpoints.OpenFIFOReceiver[string](ctx, link); !errors.Is(err, unix.ELOOP) {
		t.Errorf("OpenFIFOReceiver through a symlink = %v, want ELOOP", err)
	}
	if _, err := endpoints.OpenFIFOSender[string](ctx, link); !errors.Is(err, unix.ELOOP) {
		t.Errorf("OpenFIFOSender through a symlink = %v, want ELOOP", err)
	}
	if err := endpoints.RemoveFIFO(link); !errors.Is(err, endpoints.ErrNotFIFO) {
		t.Errorf("RemoveFIFO on a symlink = %v, want ErrNotFIFO", err)
	}
	regular := filepath.Join(dir, "regular")
	os.WriteFile(regular, []byte("data"), 0o600)
	if _, err := endpoints.OpenFIFOReceiver[string](ctx, regular); !errors.Is(err, endpoints.ErrNotFIFO) {
		t.Errorf("OpenFIFOReceiver on a regular file = %v, want ErrNotFIFO", err)
	}
	if _, err := endpoints.OpenFIFOSender[string](ctx, regular); !errors.Is(err, endpoints.ErrNotFIFO) {
		t.Errorf("OpenFIFOSender on a regular file = %v, want ErrNotFIFO", err)
	}
	if err := endpoints.RemoveFIFO(regular); !errors.Is(err, endpoints.ErrNotFIFO) {
		t.Errorf("RemoveFIFO on a regular file = %v, want ErrNotFIFO", err)
	}
	missing := filepath.Join(dir, "missing")
	_, err := endpoints.OpenFIFOReceiver[string](ctx, missing)
	var oe *ipcchan.OpError
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &oe) || oe.Endpoint != "fifo "+missing {
		t.Errorf("OpenFIFOReceiver on a missing path = %v", err)
	}
}

func TestOpenFIFOSenderWaitsForAReaderAndIsCancellable(t *testing.T) {
	path := fifoPath(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := endpoints.OpenFIFOSender[string](ctx, path)
		errc <- err
	}()
	select {
	case err := <-errc:
		t.Fatalf("OpenFIFOSender returned without a reader: %v", err)
	case <-time.After(30 * time.Millisecond):
	}
	start := time.Now()
	cancel()
	if err := <-errc; err != context.Canceled {
		t.Fatalf("cancelled OpenFIFOSender = %v", err)
	}
	t.Logf("cancel observed after %v", time.Since(start))

	// With a reader it opens.
	rx, err := endpoints.OpenFIFOReceiver[string](context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := endpoints.OpenFIFOSender[string](context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	tx.Send(context.Background(), "hello")
	tx.Close()
	if v, err := rx.Recv(context.Background()); err != nil || v != "hello" {
		t.Fatalf("Recv = %q, %v", v, err)
	}
	if _, err := rx.Recv(context.Background()); err != io.EOF {
		t.Fatalf("Recv = %v, want io.EOF", err)
	}
}

// A reader opened before any writer waits for one rather than seeing end
// of stream.
func TestFIFOReaderWaitsForFirstWriter(t *testing.T) {
	path := fifoPath(t)
	rx, err := endpoints.OpenFIFOReceiver[string](context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if _, err := rx.TryRecv(); err != ipcchan.ErrWouldBlock {
		t.Fatalf("TryRecv before any writer = %v, want ErrWouldBlock", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := rx.Recv(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Recv before any writer = %v, want a deadline, not end of stream", err)
	}
}

type job struct {
	ID    int64
	Score float64
}

func init() {
	// fifo-writer opens the FIFO at FIFO_PATH by name and sends N jobs.
	childRoles["fifo-writer"] = func() error {
		ctx := context.Background()
		tx, err := endpoints.OpenFIFOSender[job](ctx, os.Getenv("FIFO_PATH"))
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(os.Getenv("FIFO_N"))
		for i := range n {
			if err := tx.Send(ctx, job{ID: int64(i), Score: float64(i) / 2}); err != nil {
				return err
			}
		}
		return tx.Close()
	}
}

// Processes that know only the FIFO's path: several writers, one reader.
func TestFIFOByPathAcrossProcesses(t *testing.T) {
	path := fifoPath(t)
	rx, err := endpoints.OpenFIFOReceiver[job](context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	// Hold a write end open here, so that the stream does not end in a gap
	// between one writer's close and the next one's open.
	hold, err := endpoints.OpenFIFOSender[job](context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	const writers, n = 3, 1000
	var procs []*helperProc
	for range writers {
		procs = append(procs, startHelper(t, "fifo-writer", []string{"FIFO_PATH=" + path, "FIFO_N=" + strconv.Itoa(n)}))
	}
	counts := map[int64]int{}
	total := 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for j, err := range rx.All(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if j.Score != float64(j.ID)/2 {
			t.Fatalf("corrupted job %+v", j)
		}
		counts[j.ID]++
		total++
		if total == writers*n {
			break
		}
	}
	for id := range int64(n) {
		if counts[id] != writers {
			t.Fatalf("job %d arrived %d times, want %d", id, counts[id], writers)
		}
	}
	for _, p := range procs {
		if err := p.wait(); err != nil {
			t.Fatal(err)
		}
	}
}
