package backend

import (
	"context"
	"slices"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/ratelimit"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// audienceAllowed decides the audience check of verify. A role that names
// audiences is for those APIs only: a verify that names none is refused
// unless the mount relaxes it (verify_audience_optional), or a gateway
// that forgets its audience would accept keys issued for any other API.
func (b *apikeysBackend) audienceAllowed(ctx context.Context, s logical.Storage, role *record.Role, audience string) (bool, error) {
	if audience != "" {
		return slices.Contains(role.Audiences, audience), nil
	}
	if len(role.Audiences) == 0 {
		return true, nil
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return false, err
	}
	return cfg.VerifyAudienceOptional, nil
}

// takeRate draws one verify from every budget that applies to the key: the
// role's per key, the client's shared by its keys, and an active
// restriction's. It records the tightest state (and, when refused, when to
// retry) on res. The budgets live on the stack: no allocation per verify.
func (b *apikeysBackend) takeRate(res *record.VerifyResult, k *record.Key, role *record.Role, c *record.Client, restr *record.ClientRestriction, now time.Time) bool {
	var buf [3]ratelimit.Budget
	budgets := buf[:0]
	if role.RateLimit > 0 {
		budgets = append(budgets, ratelimit.Budget{ID: k.KeyID, Limit: role.RateLimit, Window: role.EffectiveRateLimitWindow()})
	}
	if c.RateLimit > 0 {
		budgets = append(budgets, ratelimit.Budget{ID: ratelimit.ClientBudget(c.Name), Limit: c.RateLimit, Window: c.EffectiveRateLimitWindow()})
	}
	if restr != nil && restr.RateLimit > 0 {
		budgets = append(budgets, ratelimit.Budget{ID: ratelimit.RestrictionBudget(c.Name), Limit: restr.RateLimit, Window: restr.EffectiveRateLimitWindow()})
	}
	if len(budgets) == 0 {
		return true
	}
	state, retry, ok := b.cache.limits.Take(budgets, now)
	res.Rate, res.RetryAfter = state, retry
	return ok
}
