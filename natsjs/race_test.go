//go:build race

package natsjs_test

// raceEnabled: the race detector slows the fault tests down several times.
const raceEnabled = true
