package record

import (
	"time"
)

// Alert types.
const (
	AlertVerifyBurst        = "verify_burst"
	AlertFailedVerifyBurst  = "failed_verify_burst"
	AlertForbiddenIP        = "forbidden_ip"
	AlertNewAddress         = "new_address"
	AlertForbiddenScope     = "forbidden_scope"
	AlertForbiddenAudience  = "forbidden_audience"
	AlertRoleWidened        = "role_scopes_widened"
	AlertRotationNotAdopted = "rotation_not_adopted"
	AlertRotationOverdue    = "rotation_overdue"
	AlertReviewDue          = "review_due"
	AlertLeakReported       = "leak_reported"
	// AlertWebhookDeadLettered: deliveries to a webhook endpoint were given
	// up after the retry window.
	AlertWebhookDeadLettered = "webhook_dead_lettered"
)

// AlertResponseRateCapped: an automated response policy reached its rate
// cap, and what it would have done was not (one per policy and window).
// Raised by the response engine, it never triggers a response itself.
const AlertResponseRateCapped = "response_rate_capped"

// AlertTypes lists every type, for validation of filters and for metrics.
var AlertTypes = []string{
	AlertVerifyBurst, AlertFailedVerifyBurst, AlertForbiddenIP, AlertNewAddress,
	AlertForbiddenScope, AlertForbiddenAudience, AlertRoleWidened,
	AlertRotationNotAdopted, AlertRotationOverdue, AlertReviewDue, AlertLeakReported,
	AlertWebhookDeadLettered, AlertResponseRateCapped,
}

// Severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
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

// AlertFilter narrows an alert listing.
type AlertFilter struct {
	Typ, Client, KeyID, Severity string
	Acknowledged                 *bool
	Since                        time.Time
}

func (f AlertFilter) Match(a *Alert) bool {
	switch {
	case f.Typ != "" && a.Type != f.Typ,
		f.Client != "" && a.Client != f.Client,
		f.KeyID != "" && a.KeyID != f.KeyID,
		f.Severity != "" && a.Severity != f.Severity,
		f.Acknowledged != nil && a.Acknowledged != *f.Acknowledged,
		!f.Since.IsZero() && a.Time.Before(f.Since):
		return false
	}
	return true
}
