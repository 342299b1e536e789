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
// signal, in a process group of its own unless shareGroup is set or cmd
// already says where its group is (see ownGroup).
func (s *spawner) start(cmd *exec.Cmd, shareGroup bool, ends ...endpoints.Handed) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if !shareGroup {
		ownGroup(cmd.SysProcAttr)
	}
	req := spawnReq{cmd: cmd, ends: ends, done: make(chan error)}
	s.reqs <- req
	return <-req.done
}

// ownGroup puts a child in a process group of its own, so that the
// signals a terminal sends its foreground group (SIGINT for Ctrl-C, SIGQUIT,
// SIGTSTP) reach only this process, which stops its children itself (a
// pool drains, a pipeline kills its stages). A child whose attributes
// already choose its group (Setpgid, with Pgid: syscall.Getpgrp() to share
// this process's), a session (Setsid) or the terminal's foreground
// (Foreground) is left as it asks.
//
// A child in a group of its own is a background job of the terminal: if it
// reads the terminal it is stopped by SIGTTIN (reading fails with EIO if
// it ignores SIGTTIN), and if it writes with `stty tostop` set, by SIGTTOU.
func ownGroup(a *syscall.SysProcAttr) {
	if a.Setpgid || a.Setsid || a.Foreground {
		return
	}
	a.Setpgid, a.Pgid = true, 0
}

// close ends the spawning thread; start must not be called afterwards.
func (s *spawner) close() { close(s.reqs) }
