//go:build race

package network

// raceEnabled reports whether the test binary was built with -race.
const raceEnabled = true
