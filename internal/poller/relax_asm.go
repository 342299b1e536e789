//go:build amd64 || arm64

package poller

// cpuRelax tells the processor that the caller is spinning (PAUSE on
// x86-64, YIELD on arm64): the core slows the loop down instead of
// flooding the memory system with loads of a line the other side is about
// to write, and yields to its hyperthread sibling.
func cpuRelax()
