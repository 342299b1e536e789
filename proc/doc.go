// Package proc runs Go channels across processes the way programs use
// them: a pool of worker processes fed typed jobs ([Start], [Serve]), and
// a pipeline of process stages ([Pipeline]), both stopped cleanly by
// context cancellation, with crashed workers reported and no process or
// goroutine left behind.
//
// The workers and stages are ordinary commands, usually this same program
// re-executed: [IsWorker] tells a program it was started as a worker.
// Endpoints reach them anonymously, as inherited descriptors (see
// endpoints.Pass), so nothing is named on disk.
package proc
