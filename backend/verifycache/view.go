package verifycache

import "github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"

// verifyView copies the fields of a key that verify and its observers
// (alerts, token exchange) read. Leaving out plaintext secrets, issuer
// identity and revocation details keeps the cache small and keeps no
// plaintext in it. Purpose and metadata stay: a role's
// verify_response_fields may put them in the answer, which must not cost a
// storage read per verify.
func verifyView(k *record.Key) *record.Key {
	out := &record.Key{
		KeyID: k.KeyID, Client: k.Client, Name: k.Name, Role: k.Role, Owner: k.Owner,
		Scopes: k.Scopes, Environment: k.Environment, Retrievable: k.Retrievable, Leased: k.Leased,
		CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LastRotatedAt: k.LastRotatedAt, NextRotationAt: k.NextRotationAt,
		Revoked: k.Revoked, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt,
		Purpose: k.Purpose, Metadata: k.Metadata,
		Versions: make([]*record.KeyVersion, len(k.Versions)),
	}
	out.Disabled = k.Disabled // verify answers "disabled"
	for i, v := range k.Versions {
		out.Versions[i] = &record.KeyVersion{
			Version: v.Version, State: v.State, HMAC: v.HMAC, CreatedAt: v.CreatedAt,
			ActivatedAt: v.ActivatedAt, GraceEndsAt: v.GraceEndsAt, RetiredAt: v.RetiredAt, RevokedAt: v.RevokedAt,
			LastVerifiedAt: v.LastVerifiedAt,
		}
	}
	return out
}
