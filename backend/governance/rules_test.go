package governance

import (
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func TestRotationOverdueAndReviewDue(t *testing.T) {
	now := testStart
	for _, c := range []struct {
		due  time.Time
		want bool
	}{
		{time.Time{}, false},
		{now, false},
		{now.Add(-OverdueTolerance), false},
		{now.Add(-OverdueTolerance - time.Second), true},
	} {
		if got := RotationOverdue(c.due, now); got != c.want {
			t.Errorf("RotationOverdue(%v) = %v", c.due, got)
		}
	}
	if ReviewDue(1000*time.Hour, 0) || ReviewDue(time.Hour-1, time.Hour) || !ReviewDue(time.Hour, time.Hour) {
		t.Error("ReviewDue: zero period never, else at unused >= period")
	}
}

// A locked client's keys are never idle; an unlock restarts idleness.
func TestIdleFor(t *testing.T) {
	now := testStart
	used := now.Add(-3 * time.Hour)
	if got := IdleFor(used, nil, now); got != 3*time.Hour {
		t.Errorf("no client: %v", got)
	}
	if got := IdleFor(used, &record.Client{Status: record.ClientLocked, StatusChangedAt: used}, now); got != 0 {
		t.Errorf("locked client: %v", got)
	}
	if got := IdleFor(used, &record.Client{StatusChangedAt: now.Add(-time.Hour)}, now); got != time.Hour {
		t.Errorf("unlocked an hour ago: %v", got)
	}
}
