package backend

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/schedule"
)

const storageRolePrefix = "roles/"

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
	// mount defaults; see effectiveRotation.
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
	// Retrievable nil means: by client type (internal yes, external no).
	Retrievable *bool `json:"retrievable,omitempty"`
	// RetrievalCutoff is when retrieval was last turned off for a client
	// type that had it: no version created at or before it is ever read
	// back, even if retrieval is turned on again before the background
	// drop (retrieval_drop.go) has removed its stored plaintext.
	RetrievalCutoff time.Time `json:"retrieval_cutoff,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func roleStorageKey(name string) string { return storageRolePrefix + name }

func (b *apikeysBackend) getRole(ctx context.Context, s logical.Storage, name string) (*Role, error) {
	return getJSON[Role](ctx, s, roleStorageKey(name), fmt.Sprintf("role %q", name))
}

func (b *apikeysBackend) putRole(ctx context.Context, s logical.Storage, r *Role) error {
	if err := putJSON(ctx, s, roleStorageKey(r.Name), "role", r); err != nil {
		return err
	}
	b.cache.invalidate(roleStorageKey(r.Name))
	return nil
}

// retrievableFor says whether keys of this role issued to a client of the
// given type keep their plaintext for later reads.
func (r *Role) retrievableFor(clientType string) bool {
	if r.Retrievable != nil {
		return *r.Retrievable
	}
	return clientType != clientExternal
}

// retrievalTurnedOff reports whether r no longer lets keys be read back
// for a client type that old (the role before the change) allowed.
func (r *Role) retrievalTurnedOff(old *Role) bool {
	for _, t := range []string{clientInternal, clientExternal} {
		if old.retrievableFor(t) && !r.retrievableFor(t) {
			return true
		}
	}
	return false
}

// readable reports whether a key read may return v's stored plaintext: a
// version that existed when retrieval was last turned off never is.
func (r *Role) readable(v *KeyVersion) bool {
	return v.CreatedAt.After(r.RetrievalCutoff)
}

// forbidsRetrieval reports whether the role, as it is now, no longer lets
// keys of client c be read back; an unknown role or client decides nothing.
// Key reads, automatic rotation and the rotation tick all follow it.
func (r *Role) forbidsRetrieval(c *Client) bool {
	return r != nil && c != nil && !r.retrievableFor(c.Type)
}

// effectiveTier is the role's risk tier, or the mount default.
func (r *Role) effectiveTier(cfg *Config) string {
	if r.RiskTier != "" {
		return r.RiskTier
	}
	return cfg.DefaultRiskTier
}

// rotationPolicy is the role's effective rotation policy: its own period or
// schedule, else its risk tier's period.
func (r *Role) rotationPolicy(cfg *Config) schedule.Policy {
	if r.RotationSchedule != "" {
		return schedule.Policy{Cron: r.RotationSchedule, Window: r.RotationWindow}
	}
	if r.RotationPeriod > 0 {
		return schedule.Policy{Period: r.RotationPeriod}
	}
	if p, ok := cfg.RiskTiers[r.effectiveTier(cfg)]; ok {
		return schedule.Policy{Period: p}
	}
	return schedule.Policy{Period: cfg.RiskTiers[cfg.DefaultRiskTier]}
}

// rotationInterval is the shortest time between two rotations of the role's
// keys under cfg, with a phrase saying where it comes from for messages.
func (r *Role) rotationInterval(cfg *Config, now time.Time) (time.Duration, string, error) {
	pol := r.rotationPolicy(cfg)
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
		return d, fmt.Sprintf("the rotation period of risk tier %q (%s)", r.effectiveTier(cfg), d), nil
	}
}

// graceSource names where the role's grace comes from, for messages.
func (r *Role) graceSource() string {
	if r.GracePeriod != nil {
		return "grace_period"
	}
	return "the mount's default_grace_period"
}

// graceConflict says how the role's effective grace under cfg is not
// shorter than the shortest time between two of its rotations ("" when it
// is). A rotation retires the version still in its grace (lifecycle.go
// activate: at most two versions are accepted at once), so such a grace
// would silently be cut short and clients would lose their previous key
// early.
func (r *Role) graceConflict(cfg *Config, now time.Time) (string, error) {
	grace := r.gracePeriod(cfg)
	interval, what, err := r.rotationInterval(cfg, now)
	if err != nil {
		return "", err
	}
	if grace < interval {
		return "", nil
	}
	return fmt.Sprintf("%s (%s) is not shorter than %s", r.graceSource(), grace, what), nil
}

// checkGraceFits is graceConflict as a user error.
func (r *Role) checkGraceFits(cfg *Config, now time.Time) error {
	c, err := r.graceConflict(cfg, now)
	if err != nil || c == "" {
		return err
	}
	return fmt.Errorf("%s; it must be shorter, because each rotation retires the previous version at once: set a shorter grace_period or rotate less often", c)
}

// gracePeriod is how long a previous version stays accepted after rotation.
func (r *Role) gracePeriod(cfg *Config) time.Duration {
	if r.GracePeriod != nil {
		return *r.GracePeriod
	}
	return cfg.DefaultGracePeriod
}

// maxGracePeriod bounds how long retirement may wait for adoption.
func (r *Role) maxGracePeriod(cfg *Config) time.Duration {
	g := r.gracePeriod(cfg)
	m := cfg.DefaultMaxGracePeriod
	if r.MaxGracePeriod != nil {
		m = *r.MaxGracePeriod
	}
	if m < g {
		return g
	}
	return m
}

// checkRolesUnderConfig refuses a configuration change (from old to cfg)
// that would break an existing role: one that names a risk tier the change
// drops, or one whose effective grace the change makes not shorter than its
// rotation interval (see graceConflict). Roles are few, so all are read.
// It returns a user-facing error naming every offending role.
func (b *apikeysBackend) checkRolesUnderConfig(ctx context.Context, s logical.Storage, old, cfg *Config, now time.Time) error {
	names, err := s.List(ctx, storageRolePrefix)
	if err != nil {
		return err
	}
	sort.Strings(names)
	// Only these fields enter a role's effective rotation interval or grace.
	rotationChanged := old.DefaultGracePeriod != cfg.DefaultGracePeriod ||
		old.DefaultRiskTier != cfg.DefaultRiskTier || !maps.Equal(old.RiskTiers, cfg.RiskTiers)
	var conflicts []string
	for _, n := range names {
		r, err := b.getRole(ctx, s, n)
		if err != nil {
			return err
		}
		if r == nil {
			continue
		}
		if r.RiskTier != "" {
			if _, ok := cfg.RiskTiers[r.RiskTier]; !ok {
				return fmt.Errorf("risk_tiers: tier %q is used by role %q; keep it or change the role first", r.RiskTier, r.Name)
			}
		}
		if !rotationChanged {
			continue
		}
		after, err := r.graceConflict(cfg, now)
		if err != nil || after == "" {
			// An error here is a role stored with a schedule that no
			// longer parses: its own problem, not this change's.
			continue
		}
		// A role stored before the rule covered rotation schedules may
		// conflict already; a change that leaves that as it was is not
		// what breaks it, and must not block unrelated settings.
		if before, err := r.graceConflict(old, now); err == nil && before == after {
			continue
		}
		conflicts = append(conflicts, fmt.Sprintf("role %q: %s", r.Name, after))
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("this change of risk_tiers, default_risk_tier or default_grace_period would leave roles whose grace is not shorter than their rotation interval, and each rotation retires the previous version at once, cutting the grace short. %s. Give these roles a shorter grace_period or a longer rotation first, or choose other values", strings.Join(conflicts, "; "))
	}
	return nil
}
