package poller

import (
	"encoding/binary"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
)

// Event is a level-triggered flag backed by an eventfd: once Set, its
// descriptor stays readable until Clear. It lets state that lives in user
// space (a closed endpoint, a value handed back) wake a [Set].
//
// Event is safe for concurrent use.
type Event struct {
	mu  sync.Mutex
	fd  int
	set bool
}

// NewEvent returns a cleared Event.
func NewEvent() (*Event, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", sys.DescriptorLimit(err))
	}
	return &Event{fd: fd}, nil
}

// FD returns the descriptor, readable while the Event is set.
func (e *Event) FD() int { return e.fd }

// Set makes the descriptor readable.
func (e *Event) Set() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.set || e.fd < 0 {
		return
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(e.fd, one[:]); err == nil {
		e.set = true
	}
}

// Clear makes the descriptor unreadable again.
func (e *Event) Clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.set || e.fd < 0 {
		return
	}
	var buf [8]byte
	unix.Read(e.fd, buf[:])
	e.set = false
}

// Close releases the eventfd.
func (e *Event) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fd < 0 {
		return nil
	}
	err := unix.Close(e.fd)
	e.fd = -1
	return err
}
