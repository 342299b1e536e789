package proc

import (
	"fmt"
	"os"
	"syscall"
)

// EventKind says what happened to a pool's worker or job (see
// Options.OnEvent).
type EventKind int

const (
	// EventStarted: Start started worker Worker, process PID.
	EventStarted EventKind = iota + 1
	// EventExited: worker Worker's process PID ended, with ExitCode and
	// Signal. Err is the *WorkerError its jobs were failed with if it
	// died (a failure status, a signal, or jobs still in hand); nil if it
	// exited cleanly with nothing in hand, as workers do when the pool
	// closes.
	EventExited
	// EventRestarted: a new process PID took the place of worker Worker,
	// which died (Options.Restart).
	EventRestarted
	// EventRestartFailed: worker Worker died and could not be replaced;
	// Err says why. The pool goes on with the others.
	EventRestartFailed
	// EventRetried: Job, which worker Worker held when it died, is to be
	// handed to another worker, for the Attempt-th time (Options.Retries).
	// Err is the dead worker's *WorkerError.
	EventRetried
)

func (k EventKind) String() string {
	switch k {
	case EventStarted:
		return "started"
	case EventExited:
		return "exited"
	case EventRestarted:
		return "restarted"
	case EventRestartFailed:
		return "restart failed"
	case EventRetried:
		return "retried"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is a change in a pool's workers or a retried job, given to
// Options.OnEvent.
type Event struct {
	Kind   EventKind
	Worker int // the worker's index in the pool, 0 to Options.Workers-1
	PID    int // its process (for EventRestarted the new one)

	// EventExited: the process's exit status, or -1 if a signal ended it,
	// and that signal.
	ExitCode int
	Signal   syscall.Signal

	Err     error // see the kinds
	Job     any   // EventRetried: the job, of the pool's type J
	Attempt int   // EventRetried: 1 for the first retry
}

// String describes e in a line, as a log would.
func (e Event) String() string {
	s := fmt.Sprintf("worker %d (pid %d) %v", e.Worker, e.PID, e.Kind)
	switch e.Kind {
	case EventExited:
		if e.Signal != 0 {
			s += ": signal: " + e.Signal.String()
		} else {
			s += fmt.Sprintf(": exit status %d", e.ExitCode)
		}
	case EventRestartFailed:
		s += fmt.Sprintf(": %v", e.Err)
	case EventRetried:
		s += fmt.Sprintf(": job %v, attempt %d", e.Job, e.Attempt)
	}
	return s
}

// Stats counts what a pool did since Start (see Pool.Stats). Submitted is
// always Done + Failed + InFlight.
type Stats struct {
	Workers   int // worker processes alive now
	Started   int // worker processes started, restarts included
	Restarted int // of which in place of a worker that died
	Exited    int // worker processes that ended
	Died      int // of which died: a failure status, a signal, or jobs still in hand
	Retried   int // jobs of dead workers handed out again
	Submitted int // jobs Submit took (those it refused with an error are not counted)
	InFlight  int // jobs submitted whose result is not out yet
	Done      int // results with no error
	Failed    int // results with an error: the handler's, a worker's death, the pool stopping
}

// exitOf returns how a process ended: its exit status, or -1 and the
// signal that ended it.
func exitOf(ps *os.ProcessState) (code int, sig syscall.Signal) {
	if ps == nil {
		return -1, 0
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal()
	}
	return ps.ExitCode(), 0
}
