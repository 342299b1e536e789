//go:build !amd64 && !arm64

package poller

// cpuRelax does nothing where no spin-wait hint is wired up: the loop
// around it only spins a little faster.
func cpuRelax() {}
