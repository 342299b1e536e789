//go:build race

package endpoints

// raceBuild turns the semaphore's fast paths off: under the race detector
// the atomics are calls into Go functions, which the scheduler may stop
// at, and the fast paths would lose what keeps Close from unmapping the
// memory under them (see semfast.go).
const raceBuild = true
