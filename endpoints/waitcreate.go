package endpoints

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/poller"
	"github.com/ipcchan/go/ipcchan"
	"github.com/ipcchan/go/ipcchan/transport"
)

// What an attempt to open an object found (see awaitCreate).
type openState int

const (
	opened     openState = iota // done: the object, or an error to return
	notCreated                  // no such object yet: a watched directory says when
	notReady                    // there but not usable yet (unsized, unformatted, not listening): poll
)

// Backoff of a wait that polls: from waitPollMin, doubling, to waitPollMax.
// A wait on inotify still looks again every waitWatchMax, in case an event
// was one the watch could not see.
const (
	waitPollMin  = 100 * time.Microsecond
	waitPollMax  = 20 * time.Millisecond
	waitWatchMax = time.Second
)

// waitHook, if set, is called with the object's description each time a
// wait for it is about to sleep: tests learn that an open is waiting.
var waitHook atomic.Pointer[func(desc string)]

// waitContext returns the context that bounds an open's wait for its
// object (see ipcchan.WithWaitForCreate), or nil if it is not to wait.
// call is the constructor's own context, nil for one that takes none: a
// wait that nothing could end is then refused. The returned func releases
// the context.
func waitContext(cfg *transport.Config, call context.Context, op, desc string) (context.Context, func(), error) {
	wctx := cfg.WaitForCreate()
	switch {
	case wctx == nil:
		return nil, func() {}, nil
	case call == nil && wctx.Done() == nil:
		return nil, nil, &ipcchan.OpError{Op: op, Endpoint: desc, Err: fmt.Errorf("%w: %s: its context never ends, and %s takes no context of its own, so nothing could end the wait: give one with a deadline or a cancel",
			ipcchan.ErrOption, transport.OptWaitForCreate, op)}
	case call == nil || call.Done() == nil:
		return wctx, func() {}, nil
	case wctx.Done() == nil:
		return call, func() {}, nil
	}
	both, cancel := context.WithCancelCause(call)
	stop := context.AfterFunc(wctx, func() { cancel(wctx.Err()) })
	return both, func() { stop(); cancel(nil) }, nil
}

// awaitCreate calls try until it reports the object opened, waiting in
// between while it reports it not created or not ready. With a nil ctx it
// tries once. dir is the directory the object appears in, watched with
// inotify ("" for none: SysV objects; then the wait polls). It returns
// try's error once opened, the error of the last try without a ctx, or the
// context's error (its cause, for a context made by waitContext).
func awaitCreate(ctx context.Context, desc, dir string, try func() (openState, error)) error {
	st, err := try()
	if st == opened || ctx == nil {
		return err
	}
	w := newDirWatch(dir)
	defer w.close()
	delay := waitPollMin
	for {
		// The watch is set before this try: a creation after it is an event.
		if st, err = try(); st == opened {
			return err
		}
		if h := waitHook.Load(); h != nil {
			(*h)(desc)
		}
		limit := delay
		if st == notCreated && w.fd != nil {
			limit = waitWatchMax
		}
		if err := w.wait(ctx, limit); err != nil {
			return err
		}
		delay = min(2*delay, waitPollMax)
	}
}

// dirWatch is an inotify watch on a directory: creations, renames into it,
// and changes of its files' size or attributes.
type dirWatch struct{ fd *poller.FD }

func newDirWatch(dir string) dirWatch {
	if dir == "" {
		return dirWatch{}
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return dirWatch{} // out of inotify instances: poll
	}
	const mask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_ATTRIB | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_ONLYDIR
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd) // no such directory (yet), or out of watches: poll
		return dirWatch{}
	}
	pfd, err := poller.Open(fd, "inotify "+dir)
	if err != nil {
		return dirWatch{}
	}
	pfd.SetReadSpin(0)
	return dirWatch{fd: pfd}
}

// wait sleeps until the watch has events (which it drains), limit has
// passed, or ctx ends (its error, or its cause).
func (w dirWatch) wait(ctx context.Context, limit time.Duration) error {
	tctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if w.fd == nil {
		<-tctx.Done()
	} else {
		var buf [4096]byte
		w.fd.Read(tctx, func(fd int) error {
			n, err := unix.Read(fd, buf[:])
			if err == nil && n > 0 {
				for { // drain: one wake-up for a burst of events
					if n, err := unix.Read(fd, buf[:]); err != nil || n <= 0 {
						break
					}
				}
			}
			return err
		})
	}
	if err := ctx.Err(); err != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
			return cause
		}
		return err
	}
	return nil
}

func (w dirWatch) close() {
	if w.fd != nil {
		w.fd.Close()
	}
}

// notExist reports whether err says that an object is not there yet.
func notExist(err error) bool { return errors.Is(err, unix.ENOENT) }

// openSysV returns the identifier get finds for the existing SysV object
// desc, the options opts allowing ipcchan.WithWaitForCreate (the one a
// SysV open honours): with it, get is retried until the object exists,
// polling, since SysV has no creation event.
func openSysV(desc string, opts []ipcchan.Option, get func() (int, error)) (int, error) {
	cfg, err := newConfig("open", desc, optWait, opts)
	if err != nil {
		return -1, err
	}
	wctx, release, err := waitContext(cfg, nil, "open", desc)
	if err != nil {
		return -1, err
	}
	defer release()
	var id int
	err = awaitCreate(wctx, desc, "", func() (openState, error) {
		var err error
		if id, err = get(); notExist(err) {
			return notCreated, err
		}
		return opened, err
	})
	if err != nil {
		return -1, wrapErr("open", desc, err)
	}
	return id, nil
}
