// Package signing keeps a mount's token signing keys (SPEC §5): the Ed25519
// key set the token exchange signs with and the jwks endpoint publishes.
// Keys owns the set's storage entry and the lock that serialises its
// changes, and logs each change to the lifecycle log; package jwtsign holds
// the pure rules of the set (what is due, what is published, how a
// rotation or withdrawal changes it) and the JWT signing, with no storage,
// clock or log, so they are tested with plain values. This package is the
// thin stateful layer on top, which is why it is not part of jwtsign.
//
// # Lifecycle
//
// A set holds one current key, which signs; optionally the next key; and
// the previous keys, newest first. Keys are published in jwks for as long
// as a verifier may need them:
//
//   - current: created when the mount initializes (Ensure) or on first use
//     (Current), and replaced every signing_key_rotation_period by Tick or
//     by the token exchange, whichever comes first after the period.
//   - next: published jwtsign.PrepublishLead before the scheduled rotation
//     (half the period, at most a day) while the current key still signs.
//     Verifiers cache the JWKS for minutes to hours; a key that signed the
//     moment it appeared would have its first tokens refused by every
//     verifier holding the older copy. A rotation that comes due before the
//     next key has been out jwtsign.MinPrepublished publishes it and keeps
//     signing with the current key until then.
//   - previous: a rotated-out key loses its private half and stays
//     published until every token it signed has expired, and no longer: a
//     token lives token_ttl, so the key is kept for the longest token_ttl
//     in force while it signed (NoteTokenTTL records the old value when a
//     config write lowers it, so lowering token_ttl never strands tokens
//     already issued). Keeping it longer would only let a compromised key
//     keep verifying forged tokens. Tick drops expired keys from storage;
//     jwks stops publishing them at once either way.
//
// # Withdrawal on compromise
//
// An operator who suspects a key leaked withdraws it. Withdraw (jwks/revoke)
// deletes named keys other than the current one from the set; Rotate with
// revokePrevious (jwks/rotate revoke_previous=true) makes a freshly
// generated key current and deletes every other key, the pre-published
// next key included, because it was stored alongside the suspected one.
// A withdrawn key is deleted, not marked, so no reload, rotation or tick
// can bring it back; tokens it signed stop verifying once verifiers
// refresh the JWKS. Refusals (the current key, a kid not published) change
// nothing and return errors wrapping jwtsign.ErrCurrentKey or
// jwtsign.ErrNotPublished for the caller to show to the user.
//
// Every change is logged: signing_key.rotated (with why, and until when
// the outgoing key stays published), signing_key.published for a next key
// and signing_key.revoked per withdrawn key. Background changes are
// attributed to the system actor given to New; an operator's to the Origin
// the caller passes.
//
// # Who calls it
//
// The backend holds one Keys per mount: the token exchange calls Current
// with the configuration it signs under, the jwks endpoint reads with Read
// (it never writes, so an unauthenticated caller cannot make the mount
// write), jwks/rotate and jwks/revoke call Rotate and Withdraw, config
// writes call NoteTokenTTL, the mount's initialize calls Ensure and its
// periodic function calls Tick.
//
// # Locking
//
// Keys owns one mutex that serialises every change: each re-reads the set
// under it, changes it, stores it and appends its log entries, so two
// concurrent token exchanges finding the key due rotate it once. Reads take
// no lock: a change stores a whole new set, so a read sees the old or the
// new one. Tick, Current and Ensure decide from an unlocked read whether
// there is anything to do and re-check under the lock. The mutex is taken
// alone or under the backend's configMu (a config write noting token_ttl),
// and only the lifecycle log's own lock is taken under it; the backend's
// locks.go states the order.
//
// # Storage
//
// The set is one entry, signing/keys, holding the JSON of jwtsign.KeySet
// (barrier-encrypted by Vault; private halves never leave the plugin):
//
//	signing/keys  {"current":{...},"next":{...},"previous":[{...},...]}
//
// Existing mounts hold this format, so it is fixed. An entry above the
// mount's record bound (Deps.MaxEntryBytes) is refused rather than handed
// to storage.
package signing
