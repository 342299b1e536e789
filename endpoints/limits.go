package endpoints

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ipcchan/go/internal/sys"
)

// An object kind, for naming the system limit a failed creation hit.
type limitKind int

const (
	descriptorKind limitKind = iota // anything that takes descriptors
	posixQueueKind
	sysvQueueKind
	sysvSemKind
	sysvShmKind
)

// limitErr adds to err, when it is the kernel saying that a limit is
// reached, which limit and where to raise it; errors.Is still finds the
// errno. Other errors are returned as they are.
func limitErr(err error, kind limitKind) error {
	var hint string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EMFILE) && kind == posixQueueKind:
		hint = "this process's open files (RLIMIT_NOFILE) or this user's queue bytes (RLIMIT_MSGQUEUE) are at their limit"
	case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
		return sys.DescriptorLimit(err)
	case errors.Is(err, unix.ENOSPC) && kind == posixQueueKind:
		hint = "the system's number of POSIX queues is at its limit (fs.mqueue.queues_max)"
	case errors.Is(err, unix.ENOSPC) && kind == sysvQueueKind:
		hint = "the system's number of SysV queues is at its limit (kernel.msgmni)"
	case errors.Is(err, unix.ENOSPC) && kind == sysvSemKind:
		hint = "the system's SysV semaphores are at their limit (kernel.sem: SEMMNI sets, SEMMNS semaphores)"
	case errors.Is(err, unix.ENOSPC) && kind == sysvShmKind:
		hint = "the system's SysV segments are at their limit (kernel.shmmni, kernel.shmall)"
	default:
		return err
	}
	return fmt.Errorf("%w: %s", err, hint)
}
