package record

import (
	"fmt"
	"time"
)

// Bounds of a client restriction's lifetime: it is a compensating control
// during an incident, not a permanent setting (those are the client's own
// fields), so it must lift itself within a month.
const (
	MinRestrictionTTL = time.Minute
	MaxRestrictionTTL = 31 * Day
)

// ClientRestriction temporarily narrows what every key of a client may do:
// verify intersects the key's effective scopes with Scopes (when set),
// requires client_ip within BoundCIDRs (when set) and draws from one extra
// budget of RateLimit per RateLimitWindow shared by all keys of the client.
// It stops applying at ExpiresAt without any write (verify compares the
// time); the governance tick records the lift and removes it.
type ClientRestriction struct {
	Scopes          []string      `json:"scopes,omitempty"`
	BoundCIDRs      []string      `json:"bound_cidrs,omitempty"`
	RateLimit       int           `json:"rate_limit,omitempty"`
	RateLimitWindow time.Duration `json:"rate_limit_window,omitempty"`
	Reason          string        `json:"reason"`
	ExpiresAt       time.Time     `json:"expires_at"`
	CreatedAt       time.Time     `json:"created_at"`
	CreatedBy       Actor         `json:"created_by"`
	UpdatedAt       time.Time     `json:"updated_at"`
}

// ActiveAt reports whether the restriction applies at now.
func (r *ClientRestriction) ActiveAt(now time.Time) bool {
	return r != nil && now.Before(r.ExpiresAt)
}

// EffectiveRateLimitWindow is the window of RateLimit (default a minute).
func (r *ClientRestriction) EffectiveRateLimitWindow() time.Duration {
	if r.RateLimitWindow > 0 {
		return r.RateLimitWindow
	}
	return time.Minute
}

// Validate names the first field out of range; a restriction that narrows
// nothing is refused, since it would only look like a control.
func (r *ClientRestriction) Validate(now time.Time) error {
	if r.Reason == "" {
		return fmt.Errorf("reason is required: say why the client is restricted")
	}
	if len(r.Scopes) == 0 && len(r.BoundCIDRs) == 0 && r.RateLimit == 0 {
		return fmt.Errorf("scopes, bound_cidrs or rate_limit: a restriction must narrow at least one")
	}
	if r.RateLimit < 0 {
		return fmt.Errorf("rate_limit must be positive (got %d)", r.RateLimit)
	}
	if r.RateLimitWindow < 0 || r.RateLimitWindow > Day {
		return fmt.Errorf("rate_limit_window must be between 1s and 24h (got %s)", r.RateLimitWindow)
	}
	if d := r.ExpiresAt.Sub(now); d < MinRestrictionTTL || d > MaxRestrictionTTL {
		return fmt.Errorf("ttl / expires_at: the restriction must lift between %s and %s from now", MinRestrictionTTL, MaxRestrictionTTL)
	}
	return nil
}

// ValidateClientRate checks a client's shared rate limit fields.
func ValidateClientRate(limit int, window time.Duration) error {
	if limit < 0 {
		return fmt.Errorf("rate_limit must be 0 (unlimited) or positive (got %d)", limit)
	}
	if window < 0 || window > Day {
		return fmt.Errorf("rate_limit_window must be between 1s and 24h (got %s)", window)
	}
	return nil
}
