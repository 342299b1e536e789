package proc

import (
	"os/exec"
	"runtime"
	"syscall"

	"github.com/ipcchan/go/endpoints"
)

// spawner starts processes from one OS thread locked for the purpose,
// which lives until close: the kernel ties a child's parent-death signal to
// the thread that forked it, so children started from a short-lived thread
// would be killed when that thread, not the process, ends.
type spawner struct {
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	ends []endpoints.Handed
	done chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq)}
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread exits with this goroutine.
		for req := range s.reqs {
			req.done <- endpoints.Start(req.cmd, req.ends...)
		}
	}()
	return s
}

// start starts cmd with ends handed over and SIGKILL as its parent-death
// signal.
func (s *spawner) start(cmd *exec.Cmd, ends ...endpoints.Handed) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	req := spawnReq{cmd: cmd, ends: ends, done: make(chan error)}
	s.reqs <- req
	return <-req.done
}

// close ends the spawning thread; start must not be called afterwards.
func (s *spawner) close() { close(s.reqs) }
