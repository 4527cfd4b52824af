package backend

import (
	"context"
	"sort"
	"strconv"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/detect"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Alerts (SPEC §7) are stored at "alerts/<id>" and each one is also a
// lifecycle-log event (eventlog.AlertRaised). IDs sort by time.
const storageAlertPrefix = "alerts/"

func alertStorageKey(id string) string { return storageAlertPrefix + id }

// raiseAlert stores a new alert and records it in the lifecycle log. It
// fills in the id, time, severity and count when unset. Other parts of the
// backend (e.g. rotation, for rotations not adopted) call it directly; a key
// change that raises an alert as part of it (a leak report) passes it to
// commitKeyWithAlerts instead.
func (b *apikeysBackend) raiseAlert(ctx context.Context, s logical.Storage, a *record.Alert) error {
	if err := b.prepareAlert(a); err != nil {
		return err
	}
	// Shared with other raises; excludes a count of stored alerts
	// (governance's open-alert counts) from seeing the alert without its
	// log entry.
	defer b.gov.LockAlertWrite()()
	if err := putAlert(ctx, s, a); err != nil {
		return err
	}
	if err := b.log.Append(ctx, s, alertEvent(a)); err != nil {
		return err
	}
	b.logAlert(a)
	return nil
}

// prepareAlert fills in the id, time, severity and count of a new alert
// when unset.
func (b *apikeysBackend) prepareAlert(a *record.Alert) error {
	if a.Time.IsZero() {
		a.Time = b.clock.Now()
	}
	if a.Severity == "" {
		a.Severity = record.SeverityWarning
	}
	if a.Count < 1 {
		a.Count = 1
	}
	if a.ID == "" {
		id, err := governance.NewAlertID(a.Time)
		if err != nil {
			return err
		}
		a.ID = id
	}
	return nil
}

// alertEvent is the alert.raised log entry of a.
func alertEvent(a *record.Alert) eventlog.Event {
	ev := systemEvent(eventlog.AlertRaised)
	if a.RaisedBy != nil {
		ev.Actor = *a.RaisedBy
		if rid := a.Details["request_id"]; rid != "" {
			ev.RequestID = rid
		}
	}
	ev.Time = a.Time
	ev.Client, ev.Key, ev.KeyID, ev.Role, ev.Version = a.Client, a.Key, a.KeyID, a.Role, a.Version
	ev.Details = map[string]string{
		"alert_id": a.ID,
		"type":     a.Type,
		"severity": a.Severity,
		"message":  a.Message,
		"count":    strconv.Itoa(a.Count),
	}
	if a.Type == record.AlertWebhookDeadLettered {
		// The outbox does not send an endpoint the alert about its own
		// deliveries (it could only fail again).
		ev.Details["endpoint"] = a.Details["endpoint"]
	}
	return ev
}

func (b *apikeysBackend) logAlert(a *record.Alert) {
	b.logger.Warn("alert raised", "type", a.Type, "severity", a.Severity, "alert_id", a.ID, "client", a.Client, "key_id", a.KeyID)
}

// redactAlert removes key-shaped text from what an alert repeats of
// requests (requested scopes and audience, addresses, names, reasons,
// notes). Every alert is written through putAlert, which calls it, so a
// key pasted into the wrong field reaches no alert, and (raiseAlert logs
// the alert once put) no alert.raised entry.
func redactAlert(a *record.Alert) {
	a.Message = keyformat.Redact(a.Message)
	a.Client, a.Key, a.Role = keyformat.Redact(a.Client), keyformat.Redact(a.Key), keyformat.Redact(a.Role)
	a.AckNote = keyformat.Redact(a.AckNote)
	a.Details = keyformat.RedactDetails(a.Details)
}

func putAlert(ctx context.Context, s logical.Storage, a *record.Alert) error {
	redactAlert(a)
	detect.Bound(a)
	return putJSON(ctx, s, alertStorageKey(a.ID), "alert", a)
}

func getAlert(ctx context.Context, s logical.Storage, id string) (*record.Alert, error) {
	a, err := getJSON[record.Alert](ctx, s, alertStorageKey(id), "alert "+id)
	if a != nil {
		detect.Bound(a)
	}
	return a, err
}

// listAlerts returns the alerts matching f, newest first, at most limit
// (0: all). It reads at most the alerts kept by the retention
// (governance.Runtime.PruneAlerts), and none raised before f.since: ids
// sort by time.
func listAlerts(ctx context.Context, s logical.Storage, f record.AlertFilter, limit int) ([]*record.Alert, error) {
	ids, err := s.List(ctx, storageAlertPrefix)
	if err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	var out []*record.Alert
	for _, id := range ids {
		if !f.Since.IsZero() && governance.RaisedBefore(id, f.Since) {
			break
		}
		a, err := getAlert(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if a == nil || !f.Match(a) {
			continue
		}
		out = append(out, a)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func alertData(a *record.Alert) map[string]interface{} {
	d := map[string]interface{}{
		"id":           a.ID,
		"type":         a.Type,
		"severity":     a.Severity,
		"time":         a.Time,
		"message":      a.Message,
		"client":       a.Client,
		"name":         a.Key,
		"key_id":       a.KeyID,
		"role":         a.Role,
		"version":      a.Version,
		"details":      nonNilMap(a.Details),
		"count":        a.Count,
		"acknowledged": a.Acknowledged,
	}
	if a.RaisedBy != nil {
		d["raised_by"] = a.RaisedBy
	}
	if a.Acknowledged {
		d["acknowledged_at"] = a.AcknowledgedAt
		d["acknowledged_by"] = a.AcknowledgedBy
		d["ack_note"] = a.AckNote
	}
	return d
}

// storedAlerts is the alert storage as governance reads it (open-alert
// counts, retention).
type storedAlerts struct{}

func (storedAlerts) AlertIDs(ctx context.Context, s logical.Storage) ([]string, error) {
	return s.List(ctx, storageAlertPrefix)
}

func (storedAlerts) Alert(ctx context.Context, s logical.Storage, id string) (*record.Alert, error) {
	return getAlert(ctx, s, id)
}
