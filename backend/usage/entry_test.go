package usage

import "testing"

func TestUsageEntryVersionSlots(t *testing.T) {
	var e entry
	e.verified(1, 10)
	e.verified(2, 20)
	e.verified(1, 30)
	e.verified(3, 40)
	e.verified(4, 50) // evicts the least recent: version 2
	want := map[int]int64{1: 30, 2: 0, 3: 40, 4: 50}
	for v, at := range want {
		if got := e.lastVerified(v); got != at {
			t.Errorf("version %d: %d, want %d", v, got, at)
		}
	}
	e.verified(3, 35) // older than known: kept
	if e.lastVerified(3) != 40 {
		t.Errorf("an older time replaced a newer one")
	}
}
