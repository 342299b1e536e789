//go:build linux

package sys

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// DescriptorLimit adds to err, when it says that descriptors ran out, which
// limit was reached and where to raise it; errors.Is still finds the errno.
// Other errors are returned as they are.
func DescriptorLimit(err error) error {
	switch {
	case errors.Is(err, unix.EMFILE):
		return fmt.Errorf("%w: this process's open files are at their limit (RLIMIT_NOFILE, ulimit -n)", err)
	case errors.Is(err, unix.ENFILE):
		return fmt.Errorf("%w: the system's open files are at their limit (fs.file-max)", err)
	}
	return err
}
