//go:build !race

package endpoints

// raceBuild says whether the race detector is on: see semfast_race.go.
const raceBuild = false
