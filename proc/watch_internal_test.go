package proc

import (
	"errors"
	"syscall"
	"testing"

	"github.com/ipcchan/go/ipcchan"
)

type watchEnd struct{ err error }

func (e watchEnd) WatchPeer(int) error { return e.err }

// A watch that cannot be set up is an error (the worker's death would go
// unseen on rings), except on ends that need none (streams end by
// themselves).
func TestWatchWorkerReportsFailures(t *testing.T) {
	if err := watchWorker(1, watchEnd{}, watchEnd{err: ipcchan.ErrNotSupported}); err != nil {
		t.Fatalf("ends that need no watch: %v", err)
	}
	if err := watchWorker(1, watchEnd{}, watchEnd{err: syscall.EMFILE}); !errors.Is(err, syscall.EMFILE) {
		t.Fatalf("a failed watch = %v, want EMFILE", err)
	}
}
