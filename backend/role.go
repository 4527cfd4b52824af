package backend

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

const storageRolePrefix = "roles/"

func roleStorageKey(name string) string { return storageRolePrefix + name }

func (b *apikeysBackend) getRole(ctx context.Context, s logical.Storage, name string) (*record.Role, error) {
	return getJSON[record.Role](ctx, s, roleStorageKey(name), fmt.Sprintf("role %q", name))
}

func (b *apikeysBackend) putRole(ctx context.Context, s logical.Storage, r *record.Role) error {
	if err := putJSON(ctx, s, roleStorageKey(r.Name), "role", r); err != nil {
		return err
	}
	b.cache.invalidate(roleStorageKey(r.Name))
	return nil
}

// checkRolesUnderConfig refuses a configuration change (from old to cfg)
// that would break an existing role: one that names a risk tier the change
// drops, or one whose effective grace the change makes not shorter than its
// rotation interval (see record.Role.GraceConflict). Roles are few, so all
// are read.
// It returns a user-facing error naming every offending role.
func (b *apikeysBackend) checkRolesUnderConfig(ctx context.Context, s logical.Storage, old, cfg *record.Config, now time.Time) error {
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
		after, err := r.GraceConflict(cfg, now)
		if err != nil || after == "" {
			// An error here is a role stored with a schedule that no
			// longer parses: its own problem, not this change's.
			continue
		}
		// A role stored before the rule covered rotation schedules may
		// conflict already; a change that leaves that as it was is not
		// what breaks it, and must not block unrelated settings.
		if before, err := r.GraceConflict(old, now); err == nil && before == after {
			continue
		}
		conflicts = append(conflicts, fmt.Sprintf("role %q: %s", r.Name, after))
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("this change of risk_tiers, default_risk_tier or default_grace_period would leave roles whose grace is not shorter than their rotation interval, and each rotation retires the previous version at once, cutting the grace short. %s. Give these roles a shorter grace_period or a longer rotation first, or choose other values", strings.Join(conflicts, "; "))
	}
	return nil
}
