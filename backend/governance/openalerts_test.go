package governance

import (
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// storeAlert stores an alert raised at at and logs its alert.raised entry.
func (e *env) storeAlert(at time.Time, typ string, acknowledged bool) string {
	e.t.Helper()
	id, err := NewAlertID(at)
	if err != nil {
		e.t.Fatal(err)
	}
	e.put(testAlertPrefix+id, &record.Alert{ID: id, Type: typ, Time: at, Acknowledged: acknowledged})
	e.appendEvent(eventlog.Event{Type: eventlog.AlertRaised, Time: at, Details: map[string]string{"alert_id": id, "type": typ}})
	return id
}

// The first fold counts the stored alerts once; from then on the log's
// alert.raised and alert.acknowledged entries move the counts, which only
// include the days the retention keeps.
func TestOpenAlertsCountedOnceThenFolded(t *testing.T) {
	e := newEnv(t, Options{})
	old := e.storeAlert(testStart.Add(-200*record.Day), record.AlertVerifyBurst, false)
	a := e.storeAlert(testStart, record.AlertForbiddenIP, false)
	e.storeAlert(testStart, record.AlertForbiddenIP, true)
	e.update(func(st *State) error { return e.r.FoldLog(e.ctx, e.s, st) })
	st := e.state()
	if !st.OpenAlertsCounted {
		t.Fatal("open alerts not counted")
	}
	open := st.OpenAlertsByType(testStart)
	if open[record.AlertForbiddenIP] != 1 || open[record.AlertVerifyBurst] != 0 || len(open) != len(record.AlertTypes) {
		t.Fatalf("open alerts %v", open)
	}
	if n := st.OpenAlerts[openAlertDay(old, time.Time{})][record.AlertVerifyBurst]; n != 1 {
		t.Fatalf("an open alert past the retention is no longer stored per day: %v", st.OpenAlerts)
	}

	// No more reads of stored alerts: an acknowledgement in the log is
	// enough, and an alert stored without its log entry is not counted.
	e.appendEvent(eventlog.Event{Type: eventlog.AlertAcknowledged, Time: testStart, Details: map[string]string{"alert_id": a, "type": record.AlertForbiddenIP}})
	e.put(testAlertPrefix+"ffffffffffffffff00000000", &record.Alert{Type: record.AlertForbiddenIP})
	e.update(func(st *State) error { return e.r.FoldLog(e.ctx, e.s, st) })
	if n := e.state().OpenAlertsByType(testStart)[record.AlertForbiddenIP]; n != 0 {
		t.Fatalf("open forbidden_ip after the acknowledgement = %d", n)
	}
}
