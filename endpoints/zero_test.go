package endpoints_test

import (
	"testing"

	"github.com/ipcchan/ipcchan/endpoints"
	"github.com/ipcchan/ipcchan/internal/zerotest"
)

// Every exported type of the package, declared rather than made, and as a
// nil pointer: no method panics or hangs, each returns an error or a
// harmless result.
func TestZeroValues(t *testing.T) {
	zerotest.Check(t,
		&endpoints.Conn[int, int]{}, (*endpoints.Conn[int, int])(nil),
		&endpoints.FileLock{}, (*endpoints.FileLock)(nil),
		&endpoints.Handed{}, (*endpoints.Handed)(nil),
		&endpoints.Leftover{}, (*endpoints.Leftover)(nil),
		&endpoints.MQNotifier{}, (*endpoints.MQNotifier)(nil),
		&endpoints.SemCounter{}, (*endpoints.SemCounter)(nil),
		&endpoints.SemSet{}, (*endpoints.SemSet)(nil),
		&endpoints.SysVQueue{}, (*endpoints.SysVQueue)(nil),
		endpoints.LockKind(0), endpoints.MQAttr{}, endpoints.MQStats{}, endpoints.MsgSelect{},
		endpoints.SemOp{}, endpoints.SemStats{}, endpoints.SysVStats{},
	)
}
