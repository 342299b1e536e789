package natsjs

// SetAfterResultHook sets a function a worker calls after a job's result is
// stored and before the job is acknowledged (the window the pool's
// exactly-once answer rests on).
func SetAfterResultHook(f func(id string)) { afterResultHook = f }

// ResultsChannel returns the name of p's results channel.
func ResultsChannel[J, R any](p *Pool[J, R]) string { return p.results }
