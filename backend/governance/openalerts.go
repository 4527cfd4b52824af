package governance

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Open-alert counts for the metrics (SPEC §7), kept without reading alerts.
//
// A scrape that listed and read every stored alert would slow down without
// bound under a sustained attack (one alert per alert_window, for ever).
// So the counts are folded from the lifecycle log like the other metrics:
// alert.raised adds one, alert.acknowledged takes one away. They are kept
// per UTC day of raising (the day is in the alert id) and summed over the
// days within the open alerts' retention (retention.go), so an open alert
// stops counting on the day the retention prunes it, with no event needed
// for the pruning; a failed or repeated prune cannot make the counts drift.
// At most 181 days × 11 alert types buckets exist: tens of KiB of state at
// worst, usually a few KiB.
//
// A mount whose state has no counts yet (written before they existed, or
// whose log was reset) counts its stored alerts once. To make that count
// agree with the log, alert writers hold Runtime.alertWrites shared from
// the alert's write through its log entry (LockAlertWrite), and the count
// holds it exclusively.

// openAlertDay is the bucket of an alert: the UTC day it was raised, from
// its id, else at.
func openAlertDay(id string, at time.Time) string {
	if t, ok := AlertRaisedAt(id); ok {
		at = t
	}
	return at.UTC().Format(time.DateOnly)
}

// countOpenAlert adds delta to the open alerts of typ raised on day.
// Counts never go below zero (an alert stored without its alert.raised
// entry, after a storage failure, can still be acknowledged).
func (st *State) countOpenAlert(day, typ string, delta int) {
	if st.OpenAlerts == nil {
		st.OpenAlerts = map[string]map[string]int{}
	}
	byType := st.OpenAlerts[day]
	if byType == nil {
		byType = map[string]int{}
		st.OpenAlerts[day] = byType
	}
	n := max(byType[typ]+delta, 0)
	if n == 0 {
		delete(byType, typ)
	} else {
		byType[typ] = n
	}
	if len(byType) == 0 {
		delete(st.OpenAlerts, day)
	}
}

// foldOpenAlert counts an alert event into the open alerts, once they are
// counted at all.
func (st *State) foldOpenAlert(ev eventlog.Event) {
	if !st.OpenAlertsCounted {
		return
	}
	id := ev.Details["alert_id"]
	switch ev.Type {
	case eventlog.AlertRaised:
		st.countOpenAlert(openAlertDay(id, ev.Time), ev.Details["type"], 1)
	case eventlog.AlertAcknowledged:
		if _, ok := AlertRaisedAt(id); ok {
			st.countOpenAlert(openAlertDay(id, ev.Time), ev.Details["type"], -1)
		}
	}
}

// OpenAlertsByType counts the unacknowledged alerts by type as of now:
// those raised on a day the retention still keeps. Every alert type is
// present, zero or not.
func (st *State) OpenAlertsByType(now time.Time) map[string]int {
	first := AlertsRetainedFrom(now).Format(time.DateOnly)
	out := make(map[string]int, len(record.AlertTypes))
	for _, t := range record.AlertTypes {
		out[t] = 0
	}
	for day, byType := range st.OpenAlerts {
		if day < first { // dates compare as strings
			continue
		}
		for t, n := range byType {
			out[t] += n
		}
	}
	return out
}

// trimOpenAlerts drops the buckets of days before from's day.
func (st *State) trimOpenAlerts(from time.Time) {
	first := from.UTC().Format(time.DateOnly)
	for day := range st.OpenAlerts {
		if day < first {
			delete(st.OpenAlerts, day)
		}
	}
}

// countStoredAlerts starts the open-alert counts from the stored alerts,
// for state written before they existed. It folds the log to its head with
// no alert being written meanwhile, so the stored alerts are exactly what
// the log up to there says; later entries are folded as usual. One read
// per stored alert, once per mount (the alerts kept are bounded by the
// retention).
func (r *Runtime) countStoredAlerts(ctx context.Context, s logical.Storage, st *State) error {
	r.alertWrites.Lock()
	defer r.alertWrites.Unlock()
	if err := r.foldEntries(ctx, s, st); err != nil {
		return err
	}
	ids, err := r.src.Alerts.AlertIDs(ctx, s)
	if err != nil {
		return err
	}
	st.OpenAlerts = nil
	for _, id := range ids {
		a, err := r.src.Alerts.Alert(ctx, s, id)
		if err != nil {
			return err
		}
		if a != nil && !a.Acknowledged {
			st.countOpenAlert(openAlertDay(a.ID, a.Time), a.Type, 1)
		}
	}
	st.OpenAlertsCounted = true
	return nil
}
