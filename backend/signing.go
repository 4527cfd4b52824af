package backend

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

// Token signing keys (SPEC §5). The Ed25519 key set lives in Vault storage
// (barrier-encrypted); private keys never leave the plugin. The current key
// rotates every signing_key_rotation_period, checked by the token exchange
// and the periodic function (never by the unauthenticated jwks read); a
// rotated-out key keeps only its public half, published in jwks until the
// tokens it signed have expired (token_ttl). An operator can withdraw any
// published key but the current one at once (jwks/revoke), or every key
// but a fresh current one (jwks/rotate revoke_previous=true); a withdrawn
// key is deleted from the set, so nothing brings it back.
const storageSigningKeys = "signing/keys"

func (b *apikeysBackend) readSigningKeys(ctx context.Context, s logical.Storage) (*jwtsign.KeySet, error) {
	set, err := getJSON[jwtsign.KeySet](ctx, s, storageSigningKeys, "signing keys")
	if err == nil && set == nil {
		set = &jwtsign.KeySet{} // no key yet
	}
	return set, err
}

func (b *apikeysBackend) putSigningKeys(ctx context.Context, s logical.Storage, set *jwtsign.KeySet) error {
	return putJSON(ctx, s, storageSigningKeys, "signing keys", set)
}

// signingKey returns the key set with a current key that may sign now,
// rotating first when the current key is missing or past its period.
func (b *apikeysBackend) signingKey(ctx context.Context, s logical.Storage, cfg *record.Config) (*jwtsign.KeySet, error) {
	set, err := b.readSigningKeys(ctx, s)
	if err != nil {
		return nil, err
	}
	if !set.Due(b.clock.Now(), cfg.SigningKeyRotationPeriod) {
		return set, nil
	}
	set, _, _, err = b.rotateSigningKeys(ctx, nil, s, cfg, false, false)
	return set, err
}

// rotateSigningKeys rotates the signing key: always when force is set (an
// operator's jwks/rotate), else only when it is due. The outgoing key stays
// published for token_ttl, so the tokens it signed verify until they
// expire, unless revokePrevious is set (a forced rotation after a suspected
// compromise): then a fresh key becomes current and every other key (the
// outgoing one, those rotated out earlier, the pre-published next one) is
// withdrawn from jwks at once. req names the actor (nil: system). It
// returns the set, the key id of the key it rotated out ("" if it rotated
// none out) and the ids of the keys it withdrew.
func (b *apikeysBackend) rotateSigningKeys(ctx context.Context, req *logical.Request, s logical.Storage, cfg *record.Config, force, revokePrevious bool) (*jwtsign.KeySet, string, []string, error) {
	b.signingMu.Lock()
	defer b.signingMu.Unlock()
	// Re-read under the lock: another request may have just rotated.
	set, err := b.readSigningKeys(ctx, s)
	if err != nil {
		return nil, "", nil, err
	}
	now := b.clock.Now()
	period := cfg.SigningKeyRotationPeriod
	if !force && !set.Due(now, period) {
		if set.Prune(now) {
			if err := b.putSigningKeys(ctx, s, set); err != nil {
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
			if err := b.publishNextLocked(ctx, s, cfg, set, now); err != nil {
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
	if err := b.putSigningKeys(ctx, s, set); err != nil {
		return nil, "", nil, err
	}
	ev := systemEvent(eventlog.SigningKeyRotated)
	if req != nil {
		ev = eventFromRequest(req, eventlog.SigningKeyRotated)
	}
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
	if err := b.log.Append(ctx, s, ev); err != nil {
		return nil, "", nil, err
	}
	if err := b.logSigningKeysRevoked(ctx, req, s, withdrawn, "rotate revoke_previous", set.Current.KID); err != nil {
		return nil, "", nil, err
	}
	return set, old, withdrawn, nil
}

// withdrawSigningKeys stops publishing the named keys at once (jwks/revoke).
// A user error (the current key, or a kid not published) changes nothing.
func (b *apikeysBackend) withdrawSigningKeys(ctx context.Context, req *logical.Request, kids []string) (set *jwtsign.KeySet, userErr, err error) {
	b.signingMu.Lock()
	defer b.signingMu.Unlock()
	s := req.Storage
	if set, err = b.readSigningKeys(ctx, s); err != nil {
		return nil, nil, err
	}
	if err := set.Withdraw(b.clock.Now(), kids); err != nil {
		return set, err, nil
	}
	if err := b.putSigningKeys(ctx, s, set); err != nil {
		return nil, nil, err
	}
	current := ""
	if set.Current != nil {
		current = set.Current.KID
	}
	return set, nil, b.logSigningKeysRevoked(ctx, req, s, kids, "revoke", current)
}

// logSigningKeysRevoked records one signing_key.revoked event per withdrawn
// key: when verifiers stopped trusting it, and by whose action.
func (b *apikeysBackend) logSigningKeysRevoked(ctx context.Context, req *logical.Request, s logical.Storage, kids []string, reason, current string) error {
	for _, kid := range kids {
		ev := systemEvent(eventlog.SigningKeyRevoked)
		if req != nil {
			ev = eventFromRequest(req, eventlog.SigningKeyRevoked)
		}
		ev.Details = map[string]string{"kid": kid, "reason": reason, "current_kid": current}
		if err := b.log.Append(ctx, s, ev); err != nil {
			return err
		}
	}
	return nil
}

// noteTokenTTL records on the signing key the token_ttl it has signed with
// before a config change lowers it (see jwtsign.KeyPair.MaxTokenTTL).
func (b *apikeysBackend) noteTokenTTL(ctx context.Context, s logical.Storage, ttl time.Duration) error {
	b.signingMu.Lock()
	defer b.signingMu.Unlock()
	set, err := b.readSigningKeys(ctx, s)
	if err != nil || set.Current == nil || set.Current.MaxTokenTTL >= ttl {
		return err
	}
	set.Current.MaxTokenTTL = ttl
	return b.putSigningKeys(ctx, s, set)
}

// ensureSigningKey creates the first signing key of a mount, so jwks has a
// key to publish before the first token exchange.
func (b *apikeysBackend) ensureSigningKey(ctx context.Context, s logical.Storage) error {
	set, err := b.readSigningKeys(ctx, s)
	if err != nil || set.Current != nil {
		return err
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return err
	}
	_, _, _, err = b.rotateSigningKeys(ctx, nil, s, cfg, false, false)
	return err
}

// signingKeyTick creates a missing signing key, rotates one that is due and
// drops previous keys no outstanding token needs. jwks reads never write,
// so this tick (with initialize and the token exchange) does all of it.
func (b *apikeysBackend) signingKeyTick(ctx context.Context, req *logical.Request) error {
	s := req.Storage
	set, err := b.readSigningKeys(ctx, s)
	if err != nil {
		return err
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return err
	}
	now := b.clock.Now()
	period := cfg.SigningKeyRotationPeriod
	if set.NeedsNext(now, period) && !set.Due(now, period) {
		return b.prepareNextSigningKey(ctx, s, cfg)
	}
	if set.Current != nil && !set.Due(now, period) && !set.CanPrune(now) {
		return nil // nothing to create, rotate or prune
	}
	_, _, _, err = b.rotateSigningKeys(ctx, nil, s, cfg, false, false)
	return err
}

// prepareNextSigningKey publishes the key the next scheduled rotation will
// make current (jwtsign.PrepublishLead ahead), so verifiers caching the
// JWKS trust it before it signs anything.
func (b *apikeysBackend) prepareNextSigningKey(ctx context.Context, s logical.Storage, cfg *record.Config) error {
	b.signingMu.Lock()
	defer b.signingMu.Unlock()
	set, err := b.readSigningKeys(ctx, s)
	if err != nil {
		return err
	}
	now := b.clock.Now()
	if !set.NeedsNext(now, cfg.SigningKeyRotationPeriod) {
		return nil // another caller did it
	}
	return b.publishNextLocked(ctx, s, cfg, set, now)
}

// publishNextLocked generates, stores and logs the next key of set; the
// caller holds signingMu.
func (b *apikeysBackend) publishNextLocked(ctx context.Context, s logical.Storage, cfg *record.Config, set *jwtsign.KeySet, now time.Time) error {
	if err := set.PrepareNext(rand.Reader, now); err != nil {
		return err
	}
	if err := b.putSigningKeys(ctx, s, set); err != nil {
		return err
	}
	ev := systemEvent(eventlog.SigningKeyPublished)
	ev.Details = map[string]string{
		"kid":              set.Next.KID,
		"current_kid":      set.Current.KID,
		"signs_from_about": set.Current.CreatedAt.Add(cfg.SigningKeyRotationPeriod).Format(time.RFC3339),
	}
	return b.log.Append(ctx, s, ev)
}
