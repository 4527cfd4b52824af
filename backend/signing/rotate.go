package signing

import (
	"context"
	"crypto/rand"
	"strconv"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Rotate rotates the signing key now (an operator's jwks/rotate), by the
// actor of by. The outgoing key stays published for token_ttl, so the
// tokens it signed verify until they expire, unless revokePrevious is set
// (after a suspected compromise): then a fresh key becomes current and
// every other key (the outgoing one, those rotated out earlier, the
// pre-published next one) is withdrawn from jwks at once. It returns the
// set, the id of the key it rotated out ("" when there was none) and the
// ids of the keys it withdrew.
func (k *Keys) Rotate(ctx context.Context, s logical.Storage, cfg *record.Config, by Origin, revokePrevious bool) (set *jwtsign.KeySet, previous string, withdrawn []string, err error) {
	return k.rotate(ctx, s, cfg, by, true, revokePrevious)
}

// Tick creates a missing signing key, publishes the next key ahead of a
// scheduled rotation, rotates a key that is due and drops previous keys no
// outstanding token needs. jwks reads never write, so this tick (with
// Ensure and Current) does all of it. It takes the lock only when there is
// something to do.
func (k *Keys) Tick(ctx context.Context, s logical.Storage) error {
	set, err := k.Read(ctx, s)
	if err != nil {
		return err
	}
	cfg, err := k.config(ctx, s)
	if err != nil {
		return err
	}
	now := k.clock.Now()
	period := cfg.SigningKeyRotationPeriod
	if set.NeedsNext(now, period) && !set.Due(now, period) {
		return k.prepareNext(ctx, s, cfg)
	}
	if set.Current != nil && !set.Due(now, period) && !set.CanPrune(now) {
		return nil // nothing to create, rotate or prune
	}
	_, _, _, err = k.rotate(ctx, s, cfg, k.system, false, false)
	return err
}

// rotate rotates the signing key: always when force is set, else only when
// it is due and the next key has been published long enough (a due
// rotation without one publishes it and waits); a rotation that is not due
// only prunes. Results as for Rotate.
func (k *Keys) rotate(ctx context.Context, s logical.Storage, cfg *record.Config, by Origin, force, revokePrevious bool) (*jwtsign.KeySet, string, []string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	// Re-read under the lock: another request may have just rotated.
	set, err := k.Read(ctx, s)
	if err != nil {
		return nil, "", nil, err
	}
	now := k.clock.Now()
	period := cfg.SigningKeyRotationPeriod
	if !force && !set.Due(now, period) {
		if set.Prune(now) {
			if err := k.put(ctx, s, set); err != nil {
				return nil, "", nil, err
			}
		}
		return set, "", nil, nil
	}
	if !force && !set.ReadyToPromote(now, period) {
		// Due, but verifiers caching the JWKS have not had the next key
		// long enough: publish it if need be, keep signing with the
		// current key, and rotate once it has been out a while.
		if set.Next == nil {
			if err := k.publishNextLocked(ctx, s, cfg, set, now); err != nil {
				return nil, "", nil, err
			}
		}
		return set, "", nil, nil
	}
	first := set.Current == nil
	old := ""
	if !first {
		old = set.Current.KID
	}
	// Tokens signed by the outgoing key expire at most the longest
	// token_ttl it signed under from now.
	keep := cfg.TokenTTL
	if set.Current != nil {
		keep = set.Current.KeepFor(cfg.TokenTTL)
	}
	var withdrawn []string
	if revokePrevious {
		keep = 0
		withdrawn = set.WithdrawAllButCurrent(now)
		if !first {
			withdrawn = append([]string{old}, withdrawn...)
		}
	}
	if err := set.Rotate(rand.Reader, now, keep, revokePrevious); err != nil {
		return nil, "", nil, err
	}
	if err := k.put(ctx, s, set); err != nil {
		return nil, "", nil, err
	}
	ev := by.event(eventlog.SigningKeyRotated)
	ev.Details = map[string]string{"kid": set.Current.KID, "previous_kid": old}
	if first {
		ev.Details["reason"] = "first key"
	} else if force {
		ev.Details["reason"] = "manual"
	} else {
		ev.Details["reason"] = "scheduled"
	}
	if !first {
		// When verifiers stop trusting the outgoing key: auditors of an
		// incident need to know whether it was withdrawn at once.
		ev.Details["revoke_previous"] = strconv.FormatBool(revokePrevious)
		ev.Details["previous_published_until"] = now.Add(keep).Format(time.RFC3339)
	}
	if err := k.log.Append(ctx, s, ev); err != nil {
		return nil, "", nil, err
	}
	if err := k.logRevoked(ctx, s, by, withdrawn, "rotate revoke_previous", set.Current.KID); err != nil {
		return nil, "", nil, err
	}
	return set, old, withdrawn, nil
}

// prepareNext publishes the key the next scheduled rotation will make
// current (jwtsign.PrepublishLead ahead), so verifiers caching the JWKS
// trust it before it signs anything.
func (k *Keys) prepareNext(ctx context.Context, s logical.Storage, cfg *record.Config) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	set, err := k.Read(ctx, s)
	if err != nil {
		return err
	}
	now := k.clock.Now()
	if !set.NeedsNext(now, cfg.SigningKeyRotationPeriod) {
		return nil // another caller did it
	}
	return k.publishNextLocked(ctx, s, cfg, set, now)
}

// publishNextLocked generates, stores and logs the next key of set; the
// caller holds k.mu.
func (k *Keys) publishNextLocked(ctx context.Context, s logical.Storage, cfg *record.Config, set *jwtsign.KeySet, now time.Time) error {
	if err := set.PrepareNext(rand.Reader, now); err != nil {
		return err
	}
	if err := k.put(ctx, s, set); err != nil {
		return err
	}
	ev := k.system.event(eventlog.SigningKeyPublished)
	ev.Details = map[string]string{
		"kid":              set.Next.KID,
		"current_kid":      set.Current.KID,
		"signs_from_about": set.Current.CreatedAt.Add(cfg.SigningKeyRotationPeriod).Format(time.RFC3339),
	}
	return k.log.Append(ctx, s, ev)
}
