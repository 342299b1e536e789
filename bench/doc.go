// Package bench compares ipcchan's endpoints with the system calls beneath
// them and with other Go libraries doing the same job, between two real
// processes on the same machine in the same run. It is its own module so
// that the libraries it measures against stay out of ipcchan's
// dependencies.
//
// Every benchmark has the same shape: this process and a child (the test
// binary re-executed) exchange messages of one size. RoundTrip sends a
// message and waits for the child to send it back; OneWay sends b.N
// messages and waits for the child's acknowledgement of the last (after an
// untimed exchange, so the child's start-up is not timed). Round trips
// report their p50 and p99 latency, and both kinds the CPU time per op of
// both processes (stats_test.go). Broadcast publishes b.N values to 1–8
// child processes through one broadcast, and through as many rings, each
// child checking what it got (broadcast_test.go). Run them all, ten times each, with
// benchstat and a results table of medians and spreads, with ./run.
package bench
