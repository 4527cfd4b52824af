package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// retirementDecisionBound is how long past the end of its grace a previous
// version may wait for the tick that decides its retirement: a tick runs
// about once a minute, and a late one a little later.
const retirementDecisionBound = 2 * time.Minute

// retirementPending reports whether previous version v, whose grace has
// ended, is still accepted because the tick that retires it has not run
// yet and would keep it (the client has not switched to the active
// version: see decideGrace). Retirement is decided when the grace ends,
// whatever the grace: without this a grace shorter than a tick would
// refuse the only version in use until the next tick, which then accepts
// it again. Past retirementDecisionBound (no tick came: the node may not
// write) the version is refused, as its grace says.
func (b *apikeysBackend) retirementPending(ctx context.Context, s logical.Storage, k *Key, v *KeyVersion, now time.Time) (bool, error) {
	if !now.Before(v.GraceEndsAt.Add(retirementDecisionBound)) {
		return false, nil
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return false, err
	}
	role, err := b.cachedRole(ctx, s, k.Role)
	if err != nil || role == nil {
		return false, err
	}
	in := adoptionInput{
		grace:        role.gracePeriod(cfg),
		maxGrace:     role.maxGracePeriod(cfg),
		previousSeen: b.versionLastVerified(k, v.Version),
	}
	if a := k.current(); a != nil {
		in.activeSeen = b.versionLastVerified(k, a.Version)
	}
	return decideGrace(k, v, now, in).action == graceExtend, nil
}
