package backend

import (
	"fmt"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// leaseLimits are the TTL bounds of one leased key: the role's ttl and
// max_ttl, capped by the mount's (Vault's system view).
type leaseLimits struct {
	TTL    time.Duration
	MaxTTL time.Duration
}

// leaseLimitsFor resolves the role's lease TTLs against the mount's default
// and maximum lease TTL: unset role values inherit the mount's, and nothing
// exceeds the mount's maximum.
func leaseLimitsFor(role *record.Role, mountDefault, mountMax time.Duration) leaseLimits {
	maxTTL := mountMax
	if role.MaxTTL > 0 && (maxTTL <= 0 || role.MaxTTL < maxTTL) {
		maxTTL = role.MaxTTL
	}
	ttl := role.TTL
	if ttl <= 0 {
		ttl = mountDefault
	}
	if maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL
	}
	return leaseLimits{TTL: ttl, MaxTTL: maxTTL}
}

// renewTTL is the TTL a renewal at now grants, the way Vault computes it
// (framework.CalculateTTL): the requested increment, else the role's ttl,
// capped so the lease never outlives issued+max_ttl. capped reports that
// the cap applied; an error means the lease has reached its max_ttl.
func renewTTL(lim leaseLimits, issued, now time.Time, increment time.Duration) (ttl time.Duration, capped bool, err error) {
	ttl = increment
	if ttl <= 0 {
		ttl = lim.TTL
	}
	left := issued.Add(lim.MaxTTL).Sub(now)
	if left <= 0 {
		return 0, false, fmt.Errorf("lease has reached its max_ttl of %s and cannot be renewed; read new credentials from creds/", lim.MaxTTL)
	}
	if ttl > left {
		return left, true, nil
	}
	return ttl, false, nil
}
