package backend

import "github.com/hashicorp/vault/sdk/framework"

// Leased keys, token exchange and JWKS (SPEC §5): creds/ in path_creds.go
// and lease_secret.go, token in path_token.go, jwks in path_jwks.go and the
// signing keys in package signing.

// pathShortLived returns the creds/, token and jwks paths.
func (b *apikeysBackend) pathShortLived() []*framework.Path {
	return append([]*framework.Path{b.pathCreds(), b.pathToken()}, b.pathJWKS()...)
}

// leaseSecrets returns the Vault secret types (leases) of the backend.
func (b *apikeysBackend) leaseSecrets() []*framework.Secret {
	return []*framework.Secret{b.secretLeasedKey()}
}

// unauthenticatedPaths lists paths readable without a Vault token: the
// public signing keys, which resource servers fetch to verify tokens.
func (b *apikeysBackend) unauthenticatedPaths() []string { return []string{"jwks"} }
