// Package jwtsign holds the token-exchange signing keys (SPEC §5): an
// Ed25519 key set with a current key that signs and previous keys whose
// public halves stay published until the tokens they signed have expired,
// and no longer: a key rotated out because it may be compromised must not
// keep verifying forged tokens.
// JOSE encoding and JWT signing are delegated to go-jose, a maintained
// library, rather than hand-written.
package jwtsign
