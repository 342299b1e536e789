//go:build race

package endpoints_test

// raceEnabled says whether the race detector is on, whose shadow memory
// multiplies what a process holds.
const raceEnabled = true
