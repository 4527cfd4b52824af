package governance

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func TestAlertsRetainedFromWholeDays(t *testing.T) {
	now := time.Date(2026, 11, 27, 15, 4, 5, 0, time.UTC)
	want := time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC) // 180 days before, at midnight
	if got := AlertsRetainedFrom(now); !got.Equal(want) {
		t.Fatalf("AlertsRetainedFrom = %v, want %v", got, want)
	}
	id, _ := NewAlertID(now)
	if at, ok := AlertRaisedAt(id); !ok || !at.Equal(now) {
		t.Fatalf("AlertRaisedAt(%s) = %v %v", id, at, ok)
	}
	if _, ok := AlertRaisedAt("legacy-id"); ok {
		t.Fatal("a non-time id has a time")
	}
	if got := fmt.Sprint(openAlertDay(id, time.Time{})); got != "2026-11-27" {
		t.Fatalf("openAlertDay = %s", got)
	}
}

// prune runs one retention step at the clock's time, deleting what it
// picks, and returns the ids deleted and whether its position moved.
func (e *env) prune() (deleted []string, moved bool) {
	e.t.Helper()
	e.update(func(st *State) error {
		from := st.AlertPrune
		defer func() { moved = st.AlertPrune != from }()
		_, err := e.r.PruneAlerts(e.ctx, e.s, st, e.clock.Now(), func(ids []string) error {
			for _, id := range ids {
				if err := e.s.Delete(e.ctx, testAlertPrefix+id); err != nil {
					return err
				}
			}
			deleted = append(deleted, ids...)
			return nil
		})
		return err
	})
	return deleted, moved
}

// The retention deletes exactly the alerts past their retention, at most a
// batch a step, and its node-local listing stays within its bound however
// many alerts are stored.
func TestRetentionListingBounded(t *testing.T) {
	e := newEnv(t, Options{AlertPruneBatch: 30, AlertListMax: 50})
	raised := map[string]bool{} // id: acknowledged
	// One every 14.4 hours over the last 300 days.
	for i := 0; i < 500; i++ {
		at := testStart.Add(-300*record.Day + time.Duration(i)*300*record.Day/500)
		raised[e.storeAlert(at, record.AlertReviewDue, i%3 == 0)] = i%3 == 0
	}
	check := func() {
		t.Helper()
		now := e.clock.Now()
		stored := map[string]bool{}
		for _, id := range e.list(testAlertPrefix) {
			stored[id] = true
		}
		for id, acked := range raised {
			at, _ := AlertRaisedAt(id)
			want := !at.Before(AlertsRetainedFrom(now)) && (!acked || now.Sub(at) <= AcknowledgedAlertRetention)
			if want != stored[id] {
				t.Fatalf("alert raised %s (acknowledged %v): stored %v at %s", at, acked, stored[id], now)
			}
		}
	}
	catchUp := func() {
		t.Helper()
		for i := 0; ; i++ {
			if i == 100 {
				t.Fatal("retention never caught up")
			}
			deleted, moved := e.prune()
			if len(deleted) > 30 {
				t.Fatalf("step %d deleted %d alerts, batch is 30", i, len(deleted))
			}
			if w := &e.r.alerts; len(w.kept) > 50 || len(w.pending) > 50 {
				t.Fatalf("walker holds %d + %d ids", len(w.kept), len(w.pending))
			}
			if len(deleted) == 0 && !moved {
				return
			}
		}
	}
	catchUp()
	check()
	for d := 0; d < 200; d += 10 {
		e.clock.Advance(10 * record.Day)
		catchUp()
		check()
	}
	if left := e.list(testAlertPrefix); len(left) != 0 {
		t.Fatalf("%d alerts left 200 days after the last was raised: %s", len(left), strings.Join(left, " "))
	}
}
