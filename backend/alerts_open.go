package backend

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Open-alert counts for the metrics (SPEC §7), kept without reading alerts.
//
// Metrics used to list and read every stored alert on every scrape, so a
// sustained attack (one alert per alert_window, for ever) made each scrape
// slower without bound. The counts are now folded from the lifecycle log
// like the other metrics (metrics_state.go): alert.raised adds one,
// alert.acknowledged takes one away. They are kept per UTC day of raising
// (the day is in the alert id) and summed over the days within the open
// alerts' retention (alerts_retention.go), so an open alert stops counting
// on the day the retention prunes it, with no event needed for the pruning;
// a failed or repeated prune cannot make the counts drift. At most
// 181 days × 11 alert types buckets exist: tens of KiB of governance state
// at worst, usually a few KiB.
//
// A mount written by a version without the counts (or whose log was reset)
// counts its stored alerts once. To make that count agree with the log,
// raising and acknowledging hold alertsRuntime.mu shared from the alert's
// write through its log entry, and the count holds it exclusively.

// alertsRuntime is the node-local side of alerts: counting and retention.
type alertsRuntime struct {
	// mu: raiseAlert and acknowledgements hold it shared, countOpenAlerts
	// exclusively (lock order: locks.go).
	mu sync.RWMutex
	// walker is the retention's position (alerts_retention.go); guarded
	// by govRuntime.persistMu.
	walker alertWalker
	// pruneBatch and listMax override alertPruneBatch and
	// alertPruneListMax when positive (tests).
	pruneBatch, listMax int
}

// openAlertDay is the bucket of an alert: the UTC day it was raised, from
// its id (ids start with the raising time), else at.
func openAlertDay(id string, at time.Time) string {
	if t, ok := alertIDTime(id); ok {
		at = t
	}
	return at.UTC().Format(time.DateOnly)
}

// alertIDTime is when an alert was raised, read from its id (newAlertID).
func alertIDTime(id string) (time.Time, bool) {
	if len(id) < 16 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseUint(id[:16], 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ns)).UTC(), true
}

// countOpenAlert adds delta to the open alerts of typ raised on day.
// Counts never go below zero (an alert stored without its alert.raised
// entry, after a storage failure, can still be acknowledged).
func (st *govState) countOpenAlert(day, typ string, delta int) {
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
func (st *govState) foldOpenAlert(ev eventlog.Event) {
	if !st.OpenAlertsCounted {
		return
	}
	id := ev.Details["alert_id"]
	switch ev.Type {
	case eventlog.AlertRaised:
		st.countOpenAlert(openAlertDay(id, ev.Time), ev.Details["type"], 1)
	case eventlog.AlertAcknowledged:
		if _, ok := alertIDTime(id); ok {
			st.countOpenAlert(openAlertDay(id, ev.Time), ev.Details["type"], -1)
		}
	}
}

// openAlertsByType sums the open alerts raised on or after from's day.
func (st *govState) openAlertsByType(from time.Time) map[string]int {
	first := from.UTC().Format(time.DateOnly)
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
func (st *govState) trimOpenAlerts(from time.Time) {
	first := from.UTC().Format(time.DateOnly)
	for day := range st.OpenAlerts {
		if day < first {
			delete(st.OpenAlerts, day)
		}
	}
}

// countOpenAlerts starts the open-alert counts from the stored alerts, for
// state written before they existed. It folds the log to its head with no
// alert being raised or acknowledged meanwhile, so the stored alerts are
// exactly what the log up to there says; later entries are folded as
// usual. One read per stored alert, once per mount (the alerts kept are
// bounded by the retention).
func (b *apikeysBackend) countOpenAlerts(ctx context.Context, s logical.Storage, st *govState) error {
	b.gov.alerts.mu.Lock()
	defer b.gov.alerts.mu.Unlock()
	if err := b.foldLogEntries(ctx, s, st); err != nil {
		return err
	}
	ids, err := s.List(ctx, storageAlertPrefix)
	if err != nil {
		return err
	}
	st.OpenAlerts = nil
	for _, id := range ids {
		a, err := getAlert(ctx, s, id)
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
