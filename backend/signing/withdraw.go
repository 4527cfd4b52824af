package signing

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
)

// Withdraw stops publishing the named keys at once (jwks/revoke), by the
// actor of by, and logs a signing_key.revoked event per key. When a kid is
// the current key or not published, nothing changes: it returns the set as
// stored and an error wrapping jwtsign.ErrCurrentKey or
// jwtsign.ErrNotPublished, which the caller shows to the user.
func (k *Keys) Withdraw(ctx context.Context, s logical.Storage, by Origin, kids []string) (*jwtsign.KeySet, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	set, err := k.Read(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := set.Withdraw(k.clock.Now(), kids); err != nil {
		return set, err
	}
	if err := k.put(ctx, s, set); err != nil {
		return nil, err
	}
	current := ""
	if set.Current != nil {
		current = set.Current.KID
	}
	return set, k.logRevoked(ctx, s, by, kids, "revoke", current)
}

// logRevoked records one signing_key.revoked event per withdrawn key: when
// verifiers stopped trusting it, and by whose action.
func (k *Keys) logRevoked(ctx context.Context, s logical.Storage, by Origin, kids []string, reason, current string) error {
	for _, kid := range kids {
		ev := by.event(eventlog.SigningKeyRevoked)
		ev.Details = map[string]string{"kid": kid, "reason": reason, "current_kid": current}
		if err := k.log.Append(ctx, s, ev); err != nil {
			return err
		}
	}
	return nil
}
