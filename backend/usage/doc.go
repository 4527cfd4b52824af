// Package usage tracks how the mount's keys are used: for each key, the
// verify outcomes counted by code, the last successful verify of the key
// and of each version, and the most recent source addresses. Key reads
// show it, the inventory's unused_for filter and the idle_timeout sweep
// (SPEC §6 stale keys) decide on it, and rotation's adoption check asks
// whether a new version has been verified yet.
//
// # Why buffered
//
// Verify is the hot path, called for every request a service receives;
// writing the key record on each call would make every verify a storage
// write (a Raft commit in a cluster) and serialise verifies of a key on its
// lock. So Record only updates a Tracker in memory, O(1) under its mutex
// and without allocating once the key has an entry, and the backend's
// periodic func calls Flush about once a minute, which merges what was
// buffered into the key records: one write per key verified since the
// previous flush, not one per verify. The mount also flushes when Vault
// stops it on this node (step-down, seal), so the next active node sees
// recent uses.
//
// # Bounded memory, and what is lost
//
// Memory is bounded, so under enough load some records cannot be kept.
// What matters most is a key's last use: the idle sweep revokes keys whose
// last use is older than their role's idle_timeout, so a lost use could
// revoke a key that is in use. The buffer therefore degrades in steps:
//
//  1. entries: full usage (counts, sources, per-version times) of up to
//     MaxEntries keys;
//  2. spill: when entries is full, only the last successful verify (time
//     and version) of up to MaxSpill more keys, small enough to hold many;
//     failed outcomes of those keys are only counted as uncounted;
//  3. beyond that nothing per key: the time of the latest successful
//     verify kept nowhere is remembered, and Trustworthy refuses idle
//     revocations that a use at that time could make wrong until it is
//     older than the idle_timeout.
//
// A flush drains both tiers oldest first, within a time budget, so the
// buffer holds only what was verified since the previous flush (or what
// storage refused); each flush logs what could not be kept since the
// last. What is buffered is per node and in memory only: a crash, or a
// node that may no longer write when it stops, loses up to a minute of
// counts, sources and last uses, and a key whose only use within its
// idle_timeout fell in that minute can then look idle.
//
// # Readers merge stored and buffered
//
// LastUsed, VersionLastVerified and Summary take the key record as stored
// and add what this node holds for it by the same rules a flush applies
// (Snapshot.MergeInto): times only move forward, counts add up, newer
// sources go in front of older ones, deduplicated and bounded. A read just
// before and just after a flush therefore shows the same usage, and a
// flush that raced with new verifies neither loses nor double-counts them:
// an entry changed since its snapshot keeps only the counts recorded after
// it and is queued again.
//
// # Locking
//
// A Tracker owns one mutex guarding all its state; every method is safe
// for concurrent use, and none holds it while calling out. Flush holds it
// only to take a chunk of snapshots or hand one back, never while persist
// runs, so verify is never held up by storage. The backend's persist
// callback takes the key's lock, loads the record, checks it is still the
// key the usage was recorded for, merges and stores: that orchestration
// stays in the backend because it needs the key locks and storage. The
// tracker never takes a key lock, so it cannot deadlock with them.
package usage
