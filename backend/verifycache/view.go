package verifycache

import "github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"

// verifyView copies the fields of a key that verify and its observers
// (alerts, token exchange) read. Leaving out plaintext secrets,
// metadata, issuer identity and revocation details keeps the cache small
// and keeps no plaintext in it.
func verifyView(k *record.Key) *record.Key {
	out := &record.Key{
		KeyID: k.KeyID, Client: k.Client, Name: k.Name, Role: k.Role, Owner: k.Owner,
		Scopes: k.Scopes, Environment: k.Environment, Retrievable: k.Retrievable, Leased: k.Leased,
		CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LastRotatedAt: k.LastRotatedAt, NextRotationAt: k.NextRotationAt,
		Revoked: k.Revoked, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt,
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
