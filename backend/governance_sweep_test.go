package backend

import (
	"testing"
	"time"
)

func TestSweepPacingScalesWithKeyCount(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		lastAt    time.Time
		lastKeys  int
		now       time.Time
		wantSweep bool
	}{
		{"never swept", time.Time{}, 0, t0, true},
		{"small mount every tick", t0, 500, t0.Add(time.Minute), true},
		{"small mount same instant", t0, 9999, t0, true},
		{"100k keys waits 10 minutes", t0, 100000, t0.Add(9 * time.Minute), false},
		{"100k keys after 10 minutes", t0, 100000, t0.Add(10 * time.Minute), true},
		{"20k keys waits 2 minutes", t0, 20000, t0.Add(time.Minute), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := &govRuntime{lastSweepAt: tc.lastAt, lastSweepKeys: tc.lastKeys}
			if got := g.sweepDue(tc.now); got != tc.wantSweep {
				t.Fatalf("sweepDue = %v, want %v", got, tc.wantSweep)
			}
		})
	}
}
