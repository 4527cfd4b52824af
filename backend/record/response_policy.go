package record

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Response actions: what an automated response policy does when an alert
// it selects is raised (SPEC §9).
const (
	// ResponseNotify does nothing beyond the notification every alert
	// gets; it is the default.
	ResponseNotify = "notify"
	// ResponseRevokeKey revokes the alert's key as a whole.
	ResponseRevokeKey = "revoke_key"
	// ResponseRotateKey rotates the alert's key now.
	ResponseRotateKey = "rotate_key"
	// ResponseLockClient locks the alert's client.
	ResponseLockClient = "lock_client"
	// ResponseRequireReapproval locks the alert's client so that only an
	// approved unlock request can unlock it.
	ResponseRequireReapproval = "require_reapproval"
)

// ResponseActions lists the actions in the order the response engine runs
// them for one alert: a revoked key is not rotated, and the stricter lock
// comes last so its outcome says what the client's state ends up being.
var ResponseActions = []string{ResponseNotify, ResponseRevokeKey, ResponseRotateKey, ResponseLockClient, ResponseRequireReapproval}

// AnyAlertType selects every alert type except AlertResponseRateCapped.
const AnyAlertType = "*"

// Response policy defaults and bounds. The rate cap's timestamps are kept
// in storage, one per action in the window, so MaxResponseActions bounds
// that record.
const (
	DefaultResponseMaxActions = 10
	DefaultResponseWindow     = time.Hour
	MaxResponseActions        = 1000
	MinResponseWindow         = time.Minute
	MaxResponseWindow         = 30 * Day
)

// ResponsePolicy is one automated response policy.
type ResponsePolicy struct {
	Name string `json:"name"`
	// AlertTypes are the alert types it selects; AnyAlertType selects all.
	AlertTypes []string `json:"alert_types"`
	// MinSeverity is the least severity it selects; empty selects all.
	MinSeverity   string   `json:"min_severity,omitempty"`
	Action        string   `json:"action"`
	ExemptClients []string `json:"exempt_clients,omitempty"`
	// MaxActions per Window is the rate cap, counted across all clients.
	MaxActions int           `json:"max_actions"`
	Window     time.Duration `json:"window"`
	Enabled    bool          `json:"enabled"`
	CreatedAt  time.Time     `json:"created_at"`
	UpdatedAt  time.Time     `json:"updated_at"`
}

// SeverityRank orders severities; an unknown one ranks below info.
func SeverityRank(s string) int {
	switch s {
	case SeverityInfo:
		return 1
	case SeverityWarning:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

// Validate checks the policy; its errors start with the field at fault.
func (p *ResponsePolicy) Validate() error {
	if len(p.AlertTypes) == 0 {
		return fmt.Errorf("alert_types is required: the alert types the policy responds to (%s, or %q for all)", strings.Join(AlertTypes, ", "), AnyAlertType)
	}
	for _, t := range p.AlertTypes {
		switch {
		case t == AlertResponseRateCapped:
			return fmt.Errorf("alert_types: %s alerts are raised by the response engine itself and cannot trigger responses", t)
		case t != AnyAlertType && !slices.Contains(AlertTypes, t):
			return fmt.Errorf("alert_types: unknown alert type %q (one of %s, or %q for all)", t, strings.Join(AlertTypes, ", "), AnyAlertType)
		}
	}
	if p.MinSeverity != "" && SeverityRank(p.MinSeverity) == 0 {
		return fmt.Errorf("min_severity must be info, warning or critical, or empty for any (got %q)", p.MinSeverity)
	}
	if !slices.Contains(ResponseActions, p.Action) {
		return fmt.Errorf("action must be one of %s (got %q)", strings.Join(ResponseActions, ", "), p.Action)
	}
	for _, c := range p.ExemptClients {
		if err := ValidateName("client", c); err != nil {
			return fmt.Errorf("exempt_clients: %w", err)
		}
	}
	if p.MaxActions < 1 || p.MaxActions > MaxResponseActions {
		return fmt.Errorf("max_actions must be between 1 and %d (got %d)", MaxResponseActions, p.MaxActions)
	}
	if p.Window < MinResponseWindow || p.Window > MaxResponseWindow {
		return fmt.Errorf("window must be between %s and %s (got %s)", MinResponseWindow, MaxResponseWindow, p.Window)
	}
	return nil
}

// Selects reports whether the enabled policy responds to alert a: its type
// and severity are selected and its client is not exempt. An alert of the
// response engine itself is never selected, so a response cannot trigger
// another.
func (p *ResponsePolicy) Selects(a *Alert) bool {
	if !p.Enabled || a.Type == AlertResponseRateCapped {
		return false
	}
	if !slices.Contains(p.AlertTypes, a.Type) && !slices.Contains(p.AlertTypes, AnyAlertType) {
		return false
	}
	if p.MinSeverity != "" && SeverityRank(a.Severity) < SeverityRank(p.MinSeverity) {
		return false
	}
	return a.Client == "" || !slices.Contains(p.ExemptClients, a.Client)
}

// ResponseApplies reports whether action can act on alert a: a key action
// needs the alert to name a key, a lock needs a client; notify never acts.
func ResponseApplies(action string, a *Alert) bool {
	switch action {
	case ResponseRevokeKey, ResponseRotateKey:
		return a.Client != "" && a.Key != ""
	case ResponseLockClient, ResponseRequireReapproval:
		return a.Client != ""
	}
	return false
}

// ResponseCap is the rate-cap bookkeeping of one policy: the times of its
// actions within the last window, oldest first, and when it last raised a
// rate-capped alert.
type ResponseCap struct {
	Times         []time.Time `json:"times,omitempty"`
	CappedAlertAt time.Time   `json:"capped_alert_at,omitempty"`
}

// Take counts an action at now if fewer than max were taken in the window
// before it, and reports whether it did. It forgets actions older than the
// window, and keeps at most max, so the record stays bounded when max is
// lowered.
func (c *ResponseCap) Take(now time.Time, max int, window time.Duration) bool {
	from := now.Add(-window)
	i := 0
	for i < len(c.Times) && !c.Times[i].After(from) {
		i++
	}
	c.Times = c.Times[i:]
	if len(c.Times) > max {
		c.Times = c.Times[len(c.Times)-max:]
	}
	if len(c.Times) >= max {
		return false
	}
	c.Times = append(c.Times, now)
	return true
}

// CappedAlertDue reports whether a rate-capped alert may be raised at now:
// one per window.
func (c *ResponseCap) CappedAlertDue(now time.Time, window time.Duration) bool {
	return c.CappedAlertAt.IsZero() || !now.Before(c.CappedAlertAt.Add(window))
}
