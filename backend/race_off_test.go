//go:build !race

package backend

// raceEnabled: see race_on_test.go.
const raceEnabled = false
