package record

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/schedule"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes"
)

// StoredRuleWarnings tells the reader of a role stored before the current
// rules that it breaks one of them; writes refuse such values, but a role
// already stored keeps working and is only fixed by writing it.
func (r *Role) StoredRuleWarnings(cfg *Config, now time.Time) []string {
	var out []string
	if r.RotationSchedule != "" && r.RotationWindow > 0 && r.RotationWindow < schedule.MinWindow {
		out = append(out, fmt.Sprintf("rotation_window %s is below the minimum %s and is applied as %s; write the role with rotation_window=%s or longer (or 0 for no limit)",
			r.RotationWindow, schedule.MinWindow, schedule.MinWindow, schedule.MinWindow))
	}
	if c, err := r.GraceConflict(cfg, now); err == nil && c != "" {
		out = append(out, c+": each rotation retires the previous version at once, so its grace is cut short; set a shorter grace_period or rotate less often")
	}
	return out
}

func Secs(d time.Duration) int64 { return int64(d / time.Second) }

func (r *Role) EffectiveRateLimitWindow() time.Duration {
	if r.RateLimitWindow > 0 {
		return r.RateLimitWindow
	}
	return time.Minute
}

// Validate checks a role against itself and the mount configuration. now is
// when the check runs: the shortest interval of a CRON_TZ schedule includes
// the zone's daylight-saving changes of the coming year
// (schedule.Policy.ShortestInterval).
func (r *Role) Validate(cfg *Config, now time.Time) error {
	if len(r.Scopes) == 0 {
		return fmt.Errorf("scopes is required: list the API scopes keys of role %q may carry, e.g. scopes=orders:read,orders:write", r.Name)
	}
	if err := scopes.ValidateAll(r.Scopes); err != nil {
		return fmt.Errorf("scopes: %v", err)
	}
	for _, a := range r.Audiences {
		if err := scopes.Validate(a); err != nil || strings.HasSuffix(a, "*") {
			return fmt.Errorf("audiences: %q is not a valid audience (use letters, digits and _ . : / -)", a)
		}
	}
	if r.Environment == "" {
		return fmt.Errorf("environment is required: name the environment of the keys, e.g. environment=prod")
	}
	if err := ValidateEnvironment(r.Environment); err != nil {
		return err
	}
	if r.RiskTier != "" {
		if _, ok := cfg.RiskTiers[r.RiskTier]; !ok {
			return fmt.Errorf("risk_tier %q is not one of the mount's risk_tiers %v", r.RiskTier, cfg.TierNames())
		}
	}
	if r.RotationPeriod != 0 && r.RotationSchedule != "" {
		return fmt.Errorf("set either rotation_period or rotation_schedule, not both")
	}
	if r.RotationPeriod != 0 && (r.RotationPeriod < MinRotationPeriod || r.RotationPeriod > MaxRotationPeriod) {
		return fmt.Errorf("rotation_period must be between %s and %s (got %s)", MinRotationPeriod, MaxRotationPeriod, r.RotationPeriod)
	}
	if r.RotationSchedule != "" || r.RotationWindow != 0 {
		p := schedule.Policy{Cron: r.RotationSchedule, Window: r.RotationWindow, Period: r.RotationPeriod}
		if r.RotationSchedule == "" && r.RotationWindow != 0 {
			return fmt.Errorf("rotation_window applies only together with rotation_schedule")
		}
		if err := p.Validate(); err != nil {
			return err
		}
		// "@every 10s" parses, but rotating more often than a fixed
		// rotation_period may is not meant either.
		if d, err := p.ShortestInterval(now); err != nil {
			return err
		} else if d < MinRotationPeriod {
			return fmt.Errorf("rotation_schedule %q rotates as often as every %s; scheduled rotations must be at least %s apart", r.RotationSchedule, d, MinRotationPeriod)
		}
	}
	grace := r.EffectiveGracePeriod(cfg)
	if grace < 0 || grace > MaxGracePeriod {
		return fmt.Errorf("grace_period must be between 0 and %s (got %s)", MaxGracePeriod, grace)
	}
	if r.MaxGracePeriod != nil && (*r.MaxGracePeriod < grace || *r.MaxGracePeriod > MaxGracePeriod) {
		return fmt.Errorf("max_grace_period must be between grace_period (%s) and %s (got %s)", grace, MaxGracePeriod, *r.MaxGracePeriod)
	}
	if err := r.CheckGraceFits(cfg, now); err != nil {
		return err
	}
	if r.KeyLifetime < 0 {
		return fmt.Errorf("key_lifetime must not be negative")
	}
	if r.TTL < 0 || r.MaxTTL < 0 {
		return fmt.Errorf("ttl and max_ttl must not be negative")
	}
	if r.MaxTTL > 0 && r.TTL > r.MaxTTL {
		return fmt.Errorf("ttl (%s) must not exceed max_ttl (%s)", r.TTL, r.MaxTTL)
	}
	for _, t := range r.AllowedClientTypes {
		if t != ClientInternal && t != ClientExternal {
			return fmt.Errorf("allowed_client_types: %q is not a client type (use internal, external)", t)
		}
	}
	if r.MaxKeysPerClient < 0 {
		return fmt.Errorf("max_keys_per_client must be 0 (unlimited) or positive (got %d)", r.MaxKeysPerClient)
	}
	if r.RateLimit < 0 {
		return fmt.Errorf("rate_limit must be 0 (unlimited) or positive (got %d)", r.RateLimit)
	}
	if r.RateLimitWindow < 0 || r.IdleTimeout < 0 {
		return fmt.Errorf("rate_limit_window and idle_timeout must not be negative")
	}
	if r.ExpiryNotice < 0 || r.ExpiryNotice > MaxNoticeLead {
		return fmt.Errorf("expiry_notice must be 0 (no notice) or positive and at most %s (got %s)", MaxNoticeLead, r.ExpiryNotice)
	}
	return nil
}

// Role is an issuance template and policy (SPEC §2, §4).
type Role struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Owner       string   `json:"owner,omitempty"`
	Scopes      []string `json:"scopes"`
	Audiences   []string `json:"audiences,omitempty"`
	Environment string   `json:"environment"`
	RiskTier    string   `json:"risk_tier,omitempty"`

	// Rotation (SPEC §4). Zero values inherit from the risk tier and the
	// mount defaults; see RotationPolicy, EffectiveGracePeriod and
	// EffectiveMaxGracePeriod.
	RotationPeriod   time.Duration  `json:"rotation_period,omitempty"`
	RotationSchedule string         `json:"rotation_schedule,omitempty"`
	RotationWindow   time.Duration  `json:"rotation_window,omitempty"`
	GracePeriod      *time.Duration `json:"grace_period,omitempty"`
	MaxGracePeriod   *time.Duration `json:"max_grace_period,omitempty"`
	// KeyLifetime is a hard expiry of managed keys (0: none).
	KeyLifetime time.Duration `json:"key_lifetime,omitempty"`

	// Leased keys (creds/).
	TTL    time.Duration `json:"ttl,omitempty"`
	MaxTTL time.Duration `json:"max_ttl,omitempty"`

	AllowedClientTypes []string      `json:"allowed_client_types,omitempty"`
	BoundCIDRs         []string      `json:"bound_cidrs,omitempty"`
	IssueBoundCIDRs    []string      `json:"issue_bound_cidrs,omitempty"`
	RequiresApproval   bool          `json:"requires_approval"`
	MaxKeysPerClient   int           `json:"max_keys_per_client,omitempty"`
	RateLimit          int           `json:"rate_limit,omitempty"`
	RateLimitWindow    time.Duration `json:"rate_limit_window,omitempty"`
	IdleTimeout        time.Duration `json:"idle_timeout,omitempty"`
	// ExpiryNotice is how long before a key of the role expires (its
	// key_lifetime or lease ends) a key.expiring notice is logged (0:
	// none).
	ExpiryNotice time.Duration `json:"expiry_notice,omitempty"`
	// VerifyResponseFields are the private fields an active verify answer
	// adds (VerifyResponseFieldNames); none by default, so a gateway learns
	// nothing about owners or metadata unless the role says so.
	VerifyResponseFields []string `json:"verify_response_fields,omitempty"`
	// Retrievable nil means: by client type (internal yes, external no).
	Retrievable *bool `json:"retrievable,omitempty"`
	// RetrievalCutoff is when retrieval was last turned off for a client
	// type that had it: no version created at or before it is ever read
	// back, even if retrieval is turned on again before the background
	// drop (backend/retrieval_drop.go) has removed its stored plaintext.
	RetrievalCutoff time.Time `json:"retrieval_cutoff,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RetrievableFor says whether keys of this role issued to a client of the
// given type keep their plaintext for later reads.
func (r *Role) RetrievableFor(clientType string) bool {
	if r.Retrievable != nil {
		return *r.Retrievable
	}
	return clientType != ClientExternal
}

// RetrievalTurnedOff reports whether r no longer lets keys be read back
// for a client type that old (the role before the change) allowed.
func (r *Role) RetrievalTurnedOff(old *Role) bool {
	for _, t := range []string{ClientInternal, ClientExternal} {
		if old.RetrievableFor(t) && !r.RetrievableFor(t) {
			return true
		}
	}
	return false
}

// Readable reports whether a key read may return v's stored plaintext: a
// version that existed when retrieval was last turned off never is.
func (r *Role) Readable(v *KeyVersion) bool {
	return v.CreatedAt.After(r.RetrievalCutoff)
}

// ForbidsRetrieval reports whether the role, as it is now, no longer lets
// keys of client c be read back; an unknown role or client decides nothing.
// Key reads, automatic rotation and the rotation tick all follow it.
func (r *Role) ForbidsRetrieval(c *Client) bool {
	return r != nil && c != nil && !r.RetrievableFor(c.Type)
}

// EffectiveTier is the role's risk tier, or the mount default.
func (r *Role) EffectiveTier(cfg *Config) string {
	if r.RiskTier != "" {
		return r.RiskTier
	}
	return cfg.DefaultRiskTier
}

// RotationPolicy is the role's effective rotation policy: its own period or
// schedule, else its risk tier's period.
func (r *Role) RotationPolicy(cfg *Config) schedule.Policy {
	if r.RotationSchedule != "" {
		return schedule.Policy{Cron: r.RotationSchedule, Window: r.RotationWindow}
	}
	if r.RotationPeriod > 0 {
		return schedule.Policy{Period: r.RotationPeriod}
	}
	if p, ok := cfg.RiskTiers[r.EffectiveTier(cfg)]; ok {
		return schedule.Policy{Period: p}
	}
	return schedule.Policy{Period: cfg.RiskTiers[cfg.DefaultRiskTier]}
}

// RotationInterval is the shortest time between two rotations of the role's
// keys under cfg, with a phrase saying where it comes from for messages.
func (r *Role) RotationInterval(cfg *Config, now time.Time) (time.Duration, string, error) {
	pol := r.RotationPolicy(cfg)
	d, err := pol.ShortestInterval(now)
	if err != nil {
		return 0, "", err
	}
	switch {
	case pol.Cron != "":
		return d, fmt.Sprintf("the shortest interval between two times of rotation_schedule %q (%s)", pol.Cron, d), nil
	case r.RotationPeriod > 0:
		return d, fmt.Sprintf("the rotation_period (%s)", d), nil
	default:
		return d, fmt.Sprintf("the rotation period of risk tier %q (%s)", r.EffectiveTier(cfg), d), nil
	}
}

// GraceSource names where the role's grace comes from, for messages.
func (r *Role) GraceSource() string {
	if r.GracePeriod != nil {
		return "grace_period"
	}
	return "the mount's default_grace_period"
}

// GraceConflict says how the role's effective grace under cfg is not
// shorter than the shortest time between two of its rotations ("" when it
// is). A rotation retires the version still in its grace (lifecycle.go
// Activate: at most two versions are accepted at once), so such a grace
// would silently be cut short and clients would lose their previous key
// early.
func (r *Role) GraceConflict(cfg *Config, now time.Time) (string, error) {
	grace := r.EffectiveGracePeriod(cfg)
	interval, what, err := r.RotationInterval(cfg, now)
	if err != nil {
		return "", err
	}
	if grace < interval {
		return "", nil
	}
	return fmt.Sprintf("%s (%s) is not shorter than %s", r.GraceSource(), grace, what), nil
}

// CheckGraceFits is GraceConflict as a user error.
func (r *Role) CheckGraceFits(cfg *Config, now time.Time) error {
	c, err := r.GraceConflict(cfg, now)
	if err != nil || c == "" {
		return err
	}
	return fmt.Errorf("%s; it must be shorter, because each rotation retires the previous version at once: set a shorter grace_period or rotate less often", c)
}

// EffectiveGracePeriod is how long a previous version stays accepted after
// rotation: the role's grace_period, else the mount default.
func (r *Role) EffectiveGracePeriod(cfg *Config) time.Duration {
	if r.GracePeriod != nil {
		return *r.GracePeriod
	}
	return cfg.DefaultGracePeriod
}

// EffectiveMaxGracePeriod bounds how long retirement may wait for adoption
// (never less than EffectiveGracePeriod).
func (r *Role) EffectiveMaxGracePeriod(cfg *Config) time.Duration {
	g := r.EffectiveGracePeriod(cfg)
	m := cfg.DefaultMaxGracePeriod
	if r.MaxGracePeriod != nil {
		m = *r.MaxGracePeriod
	}
	if m < g {
		return g
	}
	return m
}

// VerifyResponseFieldNames are the values of a role's verify_response_fields.
var VerifyResponseFieldNames = []string{"owner", "client_metadata", "key_metadata", "purpose"}

// ValidVerifyResponseFields names the first unknown value.
func ValidVerifyResponseFields(fields []string) error {
	for _, f := range fields {
		if !slices.Contains(VerifyResponseFieldNames, f) {
			return fmt.Errorf("verify_response_fields: %q is not one of %v", f, VerifyResponseFieldNames)
		}
	}
	return nil
}
