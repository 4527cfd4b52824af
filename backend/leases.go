package backend

import "github.com/hashicorp/vault/sdk/framework"

// Leased keys, token exchange and JWKS (SPEC §5). Owned by the short-lived
// credentials work.

// pathShortLived returns the creds/, token and jwks paths.
func (b *apikeysBackend) pathShortLived() []*framework.Path { return nil }

// leaseSecrets returns the Vault secret types (leases) of the backend.
func (b *apikeysBackend) leaseSecrets() []*framework.Secret { return nil }

// unauthenticatedPaths lists paths readable without a Vault token.
func (b *apikeysBackend) unauthenticatedPaths() []string { return nil }
