package governance

import (
	"testing"
	"time"
)

func TestRotationNoticeShortestLeadReached(t *testing.T) {
	due := testStart.Add(30 * 24 * time.Hour)
	leads := []time.Duration{336 * time.Hour, 72 * time.Hour, 24 * time.Hour}
	for _, c := range []struct {
		left time.Duration // until due
		want time.Duration // 0: none
	}{
		{15 * 24 * time.Hour, 0},
		{336*time.Hour + time.Second, 0},
		{336 * time.Hour, 336 * time.Hour}, // reached exactly
		{100 * time.Hour, 336 * time.Hour},
		{48 * time.Hour, 72 * time.Hour}, // two reached at once: the shorter
		{time.Hour, 24 * time.Hour},      // all three
		{0, 0},                           // due: the overdue alert's business
		{-time.Hour, 0},
	} {
		lead, ok := RotationNotice(due, due.Add(-c.left), leads)
		if ok != (c.want > 0) || lead != c.want {
			t.Errorf("%s before due: lead %s %v, want %s", c.left, lead, ok, c.want)
		}
	}
	if _, ok := RotationNotice(time.Time{}, testStart, leads); ok {
		t.Error("a key with no due time was notified")
	}
	if _, ok := RotationNotice(due, due.Add(-time.Hour), nil); ok {
		t.Error("no lead times (disabled) still notified")
	}
	// The order of leads does not matter.
	if lead, _ := RotationNotice(due, due.Add(-time.Hour), []time.Duration{24 * time.Hour, 336 * time.Hour}); lead != 24*time.Hour {
		t.Errorf("unsorted leads: %s", lead)
	}
}

func TestRotationNoticeOwedOncePerDueAndLead(t *testing.T) {
	due := testStart.Add(72 * time.Hour)
	var m Marks
	if !m.RotationNoticeOwed(due, 72*time.Hour) {
		t.Fatal("first notice not owed")
	}
	m.NoteRotationNotice(due, 72*time.Hour)
	if m.RotationNoticeOwed(due.UTC(), 72*time.Hour) || m.RotationNoticeOwed(due, 336*time.Hour) {
		t.Fatal("same or longer lead for the same due time owed again")
	}
	if !m.RotationNoticeOwed(due, 24*time.Hour) || !m.RotationNoticeOwed(due.Add(time.Hour), 72*time.Hour) {
		t.Fatal("a shorter lead or a new due time is not owed")
	}
	if m.empty() {
		t.Fatal("marks with a notice are empty (would not be stored)")
	}
	m.SettleNotices(due, time.Time{})
	if m.NoticeDue.IsZero() {
		t.Fatal("SettleNotices cleared the mark of the current due time")
	}
	m.SettleNotices(due.Add(24*time.Hour), time.Time{}) // rotated
	if !m.empty() {
		t.Fatalf("marks after the due time moved: %+v", m)
	}
}

func TestExpiryNoticeWindowAndMark(t *testing.T) {
	exp := testStart.Add(10 * time.Hour)
	for _, c := range []struct {
		now    time.Time
		notice time.Duration
		want   bool
	}{
		{exp.Add(-2 * time.Hour), time.Hour, false},
		{exp.Add(-time.Hour), time.Hour, true},
		{exp.Add(-time.Minute), time.Hour, true},
		{exp, time.Hour, false}, // expired
		{exp.Add(-time.Minute), 0, false},
	} {
		if got := ExpiryNotice(exp, c.now, c.notice); got != c.want {
			t.Errorf("ExpiryNotice(%s before, notice %s) = %v", exp.Sub(c.now), c.notice, got)
		}
	}
	if ExpiryNotice(time.Time{}, testStart, time.Hour) {
		t.Error("a key without expiry was notified")
	}
	m := Marks{Expiring: exp}
	if m.ExpiryNoticeOwed(exp) || !m.ExpiryNoticeOwed(exp.Add(time.Hour)) {
		t.Error("owed for the noted expiry, or not for an extended one")
	}
	m.SettleNotices(time.Time{}, exp.Add(time.Hour))
	if !m.empty() {
		t.Errorf("expiry mark kept after the expiry moved: %+v", m)
	}
}
