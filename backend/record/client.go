package record

import "time"

// Client statuses.
const (
	ClientActive        = "active"
	ClientLocked        = "locked"
	ClientDeprovisioned = "deprovisioned"
)

// Client types.
const (
	ClientInternal = "internal"
	ClientExternal = "external"
)

// Client is an API consumer (SPEC §2).
type Client struct {
	Name                string            `json:"name"`
	Owner               string            `json:"owner"`
	Type                string            `json:"type"`
	Description         string            `json:"description,omitempty"`
	Contact             string            `json:"contact,omitempty"`
	AllowedEnvironments []string          `json:"allowed_environments,omitempty"`
	BoundCIDRs          []string          `json:"bound_cidrs,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
	Status              string            `json:"status"`
	StatusReason        string            `json:"status_reason,omitempty"`
	StatusChangedAt     time.Time         `json:"status_changed_at,omitempty"`
	StatusChangedBy     *Actor            `json:"status_changed_by,omitempty"`
	CreatedAt           time.Time         `json:"created_at"`
	CreatedBy           Actor             `json:"created_by"`
	UpdatedAt           time.Time         `json:"updated_at"`

	// UnlockRequiresApproval is set by an automated require_reapproval
	// response: the client unlocks only with an approved unlock request.
	UnlockRequiresApproval bool `json:"unlock_requires_approval,omitempty"`

	// RateLimit is a budget of verifies per RateLimitWindow shared by all
	// keys of the client (0: none), on top of each role's per-key limit.
	RateLimit       int           `json:"rate_limit,omitempty"`
	RateLimitWindow time.Duration `json:"rate_limit_window,omitempty"`
	// Restriction is a temporary incident control (record/restriction.go).
	Restriction *ClientRestriction `json:"restriction,omitempty"`
}

// EffectiveRateLimitWindow is the window of RateLimit (default a minute).
func (c *Client) EffectiveRateLimitWindow() time.Duration {
	if c.RateLimitWindow > 0 {
		return c.RateLimitWindow
	}
	return time.Minute
}
