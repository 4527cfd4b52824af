// Package verifier lets Go resource servers and gateways check the
// credentials a vault-plugin-secrets-apikeys mount hands out, without
// importing the plugin or Vault's SDK (it needs go-jose, golang-lru, the
// plugin's pure scope grammar and the standard library).
//
// Two verifiers, for the two credentials:
//
//   - TokenVerifier checks an exchanged token (a JWT from <mount>/token)
//     offline: it fetches the mount's JWK Set from <mount>/jwks (no Vault
//     token needed), keeps the parsed Ed25519 public keys in memory and
//     checks every token against them: EdDSA only, the issuer, this
//     server's audience, the scopes asked for, exp and nbf with a bounded
//     clock skew. A token naming a key id it does not hold makes it refetch
//     the set, at most once per MinRefreshInterval however many callers ask
//     (they share one fetch). It refetches the set at least every
//     RefreshInterval, which bounds how long a signing key withdrawn in
//     Vault (jwks/revoke, jwks/rotate revoke_previous=true) keeps verifying
//     here: RefreshInterval after the withdrawal, or RefreshInterval +
//     StaleIfError while the jwks endpoint cannot be reached. A token sent
//     again is kept parsed (ParsedTokens), its signature and claims still
//     checked on every call.
//
//   - KeyVerifier asks the mount's verify endpoint about an API key online,
//     over one reused pool of connections, with the key in the X-Api-Key
//     header (GET form) or the request body (POST form), never in a URL.
//     It can keep active answers for a short CacheTTL (off by default): a
//     key revoked, locked or narrowed in Vault is then still accepted by
//     this process for up to CacheTTL. Refusals are never cached, nor
//     answers that carry a rate limit, so rate limits count every request.
//
// Both return errors that tell the credential's fault apart from a failure
// to get an answer: errors.Is(err, ErrInvalid), ErrExpired, ErrRevoked,
// ErrForbidden, ErrRateLimited for a refused credential, ErrUnavailable
// when no answer could be had (network, Vault down, JWKS unreachable) and
// ErrRequest when Vault refused the question itself (Vault token, policy,
// mount tuning). HTTPStatus maps them to the status a gateway answers with.
// No error message, log line or cache key holds a key or token.
package verifier
