package backend

import (
	"context"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// retirementPending reports whether previous version v, whose grace has
// ended, is still accepted because the tick that retires it has not run
// yet and would keep it (the client has not switched to the active
// version: see record.DecideGrace). Retirement is decided when the grace ends,
// whatever the grace: without this a grace shorter than a tick would
// refuse the only version in use until the next tick, which then accepts
// it again. Past record.RetirementDecisionBound (no tick came: the node may not
// write) the version is refused, as its grace says.
func (b *apikeysBackend) retirementPending(ctx context.Context, s logical.Storage, k *record.Key, v *record.KeyVersion, now time.Time) (bool, error) {
	if !now.Before(v.GraceEndsAt.Add(record.RetirementDecisionBound)) {
		return false, nil
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return false, err
	}
	role, err := b.cache.verify.Role(k.Role, func() (*record.Role, error) { return b.getRole(ctx, s, k.Role) })
	if err != nil || role == nil {
		return false, err
	}
	in := record.AdoptionInput{
		Grace:        role.EffectiveGracePeriod(cfg),
		MaxGrace:     role.EffectiveMaxGracePeriod(cfg),
		PreviousSeen: b.cache.usage.VersionLastVerified(k, v.Version),
	}
	if a := k.Current(); a != nil {
		in.ActiveSeen = b.cache.usage.VersionLastVerified(k, a.Version)
	}
	return record.DecideGrace(k, v, now, in).Action == record.GraceExtend, nil
}
