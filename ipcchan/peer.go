package ipcchan

import (
	"fmt"
	"github.com/ipcchan/go/ipcchan/transport"
	"os"
	"sync"

	"github.com/ipcchan/go/internal/poller"
)

// PeerExitError is the error a watched peer's exit gives blocked and later
// calls. It wraps ErrPeerGone.
type PeerExitError struct {
	PID int
}

func (e *PeerExitError) Error() string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("ipcchan: peer gone: process %d exited", e.PID)
}

// Unwrap returns ErrPeerGone.
func (e *PeerExitError) Unwrap() error { return ErrPeerGone }

// peerWatches holds the process watches of one end, stopped on Close.
type peerWatches struct {
	mu    sync.Mutex
	stops []func()
	done  bool
}

// watch calls t.Fail once process pid exits.
func (w *peerWatches) watch(t any, pid int) error {
	f, ok := t.(transport.Failer)
	if !ok {
		return ErrNotSupported
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return os.ErrClosed
	}
	stop, err := poller.WatchPID(pid, func() { f.Fail(&PeerExitError{PID: pid}) })
	if err != nil {
		return err
	}
	w.stops = append(w.stops, stop)
	return nil
}

func (w *peerWatches) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.done = true
	for _, s := range w.stops {
		s()
	}
	w.stops = nil
}
