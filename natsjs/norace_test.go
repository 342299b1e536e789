//go:build !race

package natsjs_test

const raceEnabled = false
