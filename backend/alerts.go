package backend

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// Alerts (SPEC §7) are stored at "alerts/<id>" and each one is also a
// lifecycle-log event (eventAlert). IDs sort by time.
const storageAlertPrefix = "alerts/"

// eventAlertAcknowledged records an acknowledgement in the lifecycle log.
const eventAlertAcknowledged = "alert.acknowledged"

// Alert types.
const (
	alertVerifyBurst        = "verify_burst"
	alertFailedVerifyBurst  = "failed_verify_burst"
	alertForbiddenIP        = "forbidden_ip"
	alertNewAddress         = "new_address"
	alertForbiddenScope     = "forbidden_scope"
	alertForbiddenAudience  = "forbidden_audience"
	alertRoleWidened        = "role_scopes_widened"
	alertRotationNotAdopted = "rotation_not_adopted"
	alertRotationOverdue    = "rotation_overdue"
	alertReviewDue          = "review_due"
	alertLeakReported       = "leak_reported"
)

// alertTypes lists every type, for validation of filters and for metrics.
var alertTypes = []string{
	alertVerifyBurst, alertFailedVerifyBurst, alertForbiddenIP, alertNewAddress,
	alertForbiddenScope, alertForbiddenAudience, alertRoleWidened,
	alertRotationNotAdopted, alertRotationOverdue, alertReviewDue, alertLeakReported,
}

// Severities.
const (
	severityInfo     = "info"
	severityWarning  = "warning"
	severityCritical = "critical"
)

// Alert is one raised alert. It holds only non-secret identifiers.
type Alert struct {
	ID       string            `json:"id"`
	Type     string            `json:"type"`
	Severity string            `json:"severity"`
	Time     time.Time         `json:"time"`
	Message  string            `json:"message"`
	Client   string            `json:"client,omitempty"`
	Key      string            `json:"key,omitempty"`
	KeyID    string            `json:"key_id,omitempty"`
	Role     string            `json:"role,omitempty"`
	Version  int               `json:"version,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	// Count is how many occurrences the alert aggregates (verify-based
	// alerts count the attempts seen until it was persisted).
	Count int `json:"count"`

	// RaisedBy is the caller whose request raised the alert; nil for
	// background detection ("system").
	RaisedBy *Actor `json:"raised_by,omitempty"`

	Acknowledged   bool      `json:"acknowledged"`
	AcknowledgedAt time.Time `json:"acknowledged_at,omitempty"`
	AcknowledgedBy *Actor    `json:"acknowledged_by,omitempty"`
	AckNote        string    `json:"ack_note,omitempty"`
}

func alertStorageKey(id string) string { return storageAlertPrefix + id }

// newAlertID returns an id that sorts by creation time.
func newAlertID(now time.Time) (string, error) {
	id, err := randomHex(4)
	return fmt.Sprintf("%016x%s", now.UnixNano(), id), err
}

// raiseAlert stores a new alert and records it in the lifecycle log. It
// fills in the id, time, severity and count when unset. Other parts of the
// backend (e.g. rotation, for rotations not adopted) call it directly; a key
// change that raises an alert as part of it (a leak report) passes it to
// commitKeyWithAlerts instead.
func (b *apikeysBackend) raiseAlert(ctx context.Context, s logical.Storage, a *Alert) error {
	if err := b.prepareAlert(a); err != nil {
		return err
	}
	// Shared with other raises; excludes a count of stored alerts
	// (countOpenAlerts) from seeing the alert without its log entry.
	b.gov.alerts.mu.RLock()
	defer b.gov.alerts.mu.RUnlock()
	if err := putAlert(ctx, s, a); err != nil {
		return err
	}
	if err := b.appendEvent(ctx, s, alertEvent(a)); err != nil {
		return err
	}
	b.logAlert(a)
	return nil
}

// prepareAlert fills in the id, time, severity and count of a new alert
// when unset.
func (b *apikeysBackend) prepareAlert(a *Alert) error {
	if a.Time.IsZero() {
		a.Time = b.clock.Now()
	}
	if a.Severity == "" {
		a.Severity = severityWarning
	}
	if a.Count < 1 {
		a.Count = 1
	}
	if a.ID == "" {
		id, err := newAlertID(a.Time)
		if err != nil {
			return err
		}
		a.ID = id
	}
	return nil
}

// alertEvent is the alert.raised log entry of a.
func alertEvent(a *Alert) Event {
	ev := systemEvent(eventAlert)
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
	return ev
}

func (b *apikeysBackend) logAlert(a *Alert) {
	b.logger.Warn("alert raised", "type", a.Type, "severity", a.Severity, "alert_id", a.ID, "client", a.Client, "key_id", a.KeyID)
}

// redactAlert removes key-shaped text from what an alert repeats of
// requests (requested scopes and audience, addresses, names, reasons,
// notes). Every alert is written through putAlert, which calls it, so a
// key pasted into the wrong field reaches no alert, and (raiseAlert logs
// the alert once put) no alert.raised entry.
func redactAlert(a *Alert) {
	a.Message = keyformat.Redact(a.Message)
	a.Client, a.Key, a.Role = keyformat.Redact(a.Client), keyformat.Redact(a.Key), keyformat.Redact(a.Role)
	a.AckNote = keyformat.Redact(a.AckNote)
	a.Details = redactDetails(a.Details)
}

func putAlert(ctx context.Context, s logical.Storage, a *Alert) error {
	redactAlert(a)
	return putJSON(ctx, s, alertStorageKey(a.ID), "alert", a)
}

func getAlert(ctx context.Context, s logical.Storage, id string) (*Alert, error) {
	return getJSON[Alert](ctx, s, alertStorageKey(id), "alert "+id)
}

// alertFilter narrows an alert listing.
type alertFilter struct {
	typ, client, keyID, severity string
	acknowledged                 *bool
	since                        time.Time
}

func (f alertFilter) match(a *Alert) bool {
	switch {
	case f.typ != "" && a.Type != f.typ,
		f.client != "" && a.Client != f.client,
		f.keyID != "" && a.KeyID != f.keyID,
		f.severity != "" && a.Severity != f.severity,
		f.acknowledged != nil && a.Acknowledged != *f.acknowledged,
		!f.since.IsZero() && a.Time.Before(f.since):
		return false
	}
	return true
}

// listAlerts returns the alerts matching f, newest first, at most limit
// (0: all). It reads at most the alerts kept by the retention
// (alerts_retention.go), and none raised before f.since: ids sort by time.
func listAlerts(ctx context.Context, s logical.Storage, f alertFilter, limit int) ([]*Alert, error) {
	ids, err := s.List(ctx, storageAlertPrefix)
	if err != nil {
		return nil, err
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	var out []*Alert
	for _, id := range ids {
		if !f.since.IsZero() && alertIDBefore(id, f.since) {
			break
		}
		a, err := getAlert(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if a == nil || !f.match(a) {
			continue
		}
		out = append(out, a)
		if limit > 0 && len(out) >= limit {
			break
		}
	}
	return out, nil
}

func (a *Alert) responseData() map[string]interface{} {
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
