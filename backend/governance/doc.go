// Package governance keeps the mount's governance state (SPEC §6, §7) and
// walks keys and alerts in bounded steps for the periodic governance tick:
// what the tick has counted, where its sweeps stand, which keys it already
// alerted about, and the rules that decide what is due. The backend calls
// it; the actions themselves (raising and storing alerts, revoking idle keys
// under their locks, the WAL-ordered key commit, appending to the lifecycle
// log) stay in the backend, which hands them in as callbacks.
//
// # What is kept, and why it is split
//
// One small entry, "governance/state" (State), holds what is bounded
// whatever the number of keys: lifecycle-log counters (by event type, the
// last entry folded), verify outcome totals, recent time-to-revoke samples
// (at most 1,000), open alerts by UTC day and type, and the two cursors
// (the key sweep's and the alert retention's). Its worst case is a few tens
// of KiB.
//
// What grows with the number of keys lives in per-key entries,
// "governance/marks/<key id>" (Marks): when a key was flagged for review
// and for which rotation due time it was reported overdue (so each cause
// alerts once), and its first alert not yet followed by a revocation
// (time-to-revoke). Held as maps in the state entry, they would pass
// Raft's 1 MiB entry limit on a large mount, and every tick would fail from
// then on; per key, an entry stays a few hundred bytes and a tick reads one
// per key it visits. A State reads marks through a cache and writes the
// changed ones (deleting empty ones) when it is saved, before the state
// entry. The JSON of both entries is the storage format of existing mounts:
// fields are added, never renamed.
//
// # Bounded ticks that resume
//
// Sweep visits the tick's quota of keys (TickQuota: 10,000, or a twelfth
// of the mount past 120,000 keys) in storage order (client, then name),
// carrying on after the persisted cursor, and starts a new pass after the
// last key: a tick's cost stops growing with the mount at the quota, and a
// million keys are swept in 12 ticks. The walker lists
// clients once per pass and a client's keys once when it reaches them; it
// is node-local and is rebuilt from the stored cursor whenever it is not
// there, so after a restart or failover the new active node carries on
// where the last saved cursor stands rather than restarting the pass. A key
// the backend cannot handle is skipped until the next pass; a failed
// listing or an ended context (the node stepping down) stops the step
// before the key it was on, so nothing is skipped.
//
// # Alert retention
//
// PruneAlerts picks the alerts past their retention: acknowledged ones 90
// days after they were raised, all of them at the end of the UTC day 180
// days after. Alert ids begin with the raising time (NewAlertID), so a
// sorted listing is in age order: the front past the open retention is
// deleted without a read, and each alert is read once when it turns 90
// days old. A step examines at most a batch (2,000 by default) and keeps
// at most two bounded slices of the listing in memory; the persisted
// position lets another node carry on. The backend's callback logs the
// pruned ids (alerts.pruned) before deleting them.
//
// # Open-alert counts
//
// Metrics report unacknowledged alerts by type without reading alerts:
// FoldLog folds alert.raised and alert.acknowledged log entries into
// per-day counts, and the days the retention has pruned are no longer
// summed, so no event is needed for a pruned alert. A state without counts
// (an older mount, a reset log) counts its stored alerts once.
//
// # Locking
//
// A Runtime owns two locks (their place in the mount's lock order is in
// the backend's locks.go). The state lock serialises load, change and save:
// Update holds it around its callback, so no caller can change the state
// without it, and the walkers' node-local positions are guarded by it
// (Sweep and PruneAlerts refuse a state Update is not running with).
// LockAlertChange takes it for alert changes that must not interleave with
// a tick (an acknowledgement), and DropMarks for purged keys' marks. The
// alert-write lock is held shared by every writer of an alert from the
// alert's write through its log entry (LockAlertWrite), and exclusively
// while the stored alerts are counted, so that count agrees with the log.
// The backend's callbacks run under the state lock and may take key locks
// and the alert-write lock, never the state lock. Snapshot, which metrics
// read with, writes nothing and takes no state lock (only a first count of
// stored alerts takes the alert-write lock).
package governance
