//go:build race

package backend

// raceEnabled: the race detector slows storage-heavy tests several times
// over, so the largest scale variants skip under it.
const raceEnabled = true
