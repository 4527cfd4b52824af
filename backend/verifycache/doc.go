// Package verifycache keeps what verify reads (SPEC §5) in memory: the
// index entry of a key's HMAC, the key record, its role and its client.
// Verify is called for every request a service receives and must not pay a
// storage round trip (a Raft read in a cluster) for each of the four on
// every call. Management paths keep reading storage under their locks, but
// for issuance: it reads its client and role through the cache, under
// locks that exclude every local writer of them (backend's issueTarget),
// and skips its second read of the new key while the absence note of its
// existence check still holds (absence.go).
//
// # What is cached
//
// Four bounded least-recently-used tables, one per kind of record, sized so
// memory stays flat however many keys a mount holds (a miss just costs one
// storage read): up to 20000 index entries, 10000 keys, 4096 roles and
// 8192 clients. A key is kept as a verify view: only the fields verify and
// its observers (alerts, token exchange) read, without plaintext secrets,
// metadata, issuer identity or revocation details, which keeps entries
// small and no plaintext in the cache. Absent records and failed loads are
// not cached, so a key issued after a miss is found at once.
//
// # Correctness rules
//
// Verify must never accept a key that was revoked, locked or retired once
// the change that did so has returned. Three rules make the cache safe:
//
//   - Drop under the writer's lock. Every local write of a key, client or
//     role calls the matching Drop while the writer still holds the
//     record's lock, and other nodes' writes arrive through Vault's
//     Invalidate, which the backend translates into the same Drops.
//   - Generation fence on fills. A fill reads storage and then inserts; it
//     could race with a Drop and put back the state it read before the
//     write. Every Drop bumps a generation counter of the entry's stripe (a
//     hash of kind and name; Purge bumps all of them); a fill records the
//     generation before calling its loader and inserts only if it is
//     unchanged. So an entry in the cache was always read after the last
//     drop of it.
//   - Shared read-only objects. Key, Role and Client return the cached
//     object itself, shared by every verify of it: callers must never
//     modify it. Index returns a copy.
//
// # Who calls it and how
//
// The backend holds one Cache per mount and passes each lookup a loader
// that reads storage (its getIndex, getKey, getRole, getClient). The
// package takes no storage and knows no storage keys: the backend owns the
// storage layout and maps a storage key to a Drop in one place, so this
// package only speaks of records by name.
//
// # Concurrency
//
// A Cache owns one mutex guarding the tables and generations. It is a leaf
// in the backend's lock order: held for a few instructions, never while a
// loader runs (a miss releases it around the storage read) and never while
// calling out. Concurrent misses of one record each run their loader (no
// single flight: a miss is one storage read, and the fence keeps whichever
// fill is stale out). Every method is safe for concurrent use. A hit on a
// key, role or client does not allocate; Index allocates the copy it
// returns.
package verifycache
