// Package bench compares ipcchan's endpoints with the system calls beneath
// them and with other Go libraries doing the same job, between two real
// processes on the same machine in the same run. It is its own module so
// that the libraries it measures against stay out of ipcchan's
// dependencies.
//
// Every benchmark has the same shape: this process and a child (the test
// binary re-executed) exchange messages of one size. RoundTrip sends a
// message and waits for the child to send it back; OneWay sends b.N
// messages and waits for the child's acknowledgement of the last. Run them
// all, with benchstat and a results table, with ./run.
package bench
