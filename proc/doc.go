// Package proc runs Go channels across processes the way programs use
// them: a pool of worker processes fed typed jobs ([Start], [Serve]), and
// a pipeline of process stages ([Pipeline]), both stopped cleanly by
// context cancellation, with crashed workers reported and no process or
// goroutine left behind.
//
// The workers and stages are ordinary commands, usually this same program
// re-executed: [IsWorker] tells a program it was started as a worker.
// Nothing of this program's command line reaches a worker unless given
// in [Options].Args (os.Args[1:] gives it the same flags); [Options].Env
// adds to its environment. Endpoints reach them anonymously, as inherited
// descriptors (see endpoints.Pass), so nothing is named on disk.
//
// # Ctrl-C
//
// A terminal's Ctrl-C sends SIGINT to every process of its foreground
// process group. Workers and stages are therefore started in a process
// group of their own: the signal reaches only this process, whose context
// ends (with signal.NotifyContext), and the pool drains — dispatch stops,
// the workers finish the jobs they hold and exit, Submit returns an error
// wrapping context.Canceled — or the pipeline stops its stages and
// returns context.Canceled. No job is reported as a worker's death
// because of the key press. The same holds for Ctrl-\ (SIGQUIT) and
// Ctrl-Z (SIGTSTP: this process stops, the workers run on until their
// streams fill). They still die with this process (a parent-death
// signal), however it ends.
//
// In a group of their own, workers and stages are background jobs of the
// terminal: one that reads the terminal is stopped by SIGTTIN (or its
// read fails with EIO if it ignores SIGTTIN), and one that writes to it
// while `stty tostop` is set is stopped by SIGTTOU. A worker that must
// share the terminal is kept in this process's group by
// [Options].ShareProcessGroup, a stage by its own SysProcAttr (Setpgid
// with Pgid: syscall.Getpgrp()); Ctrl-C then reaches it too.
//
// # Watching a pool
//
// [Options].OnEvent is told of every worker started, exited (with its
// exit status or signal) or restarted and every job retried, and
// [Pool.Stats] counts them, with the jobs submitted, in flight, done and
// failed.
package proc
