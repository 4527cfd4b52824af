package backend

import (
	"github.com/hashicorp/vault/sdk/helper/locksutil"
)

// Lock order. Every lock of a mount is listed here, once, with the locks
// that may be taken while it is held; a lock is only ever taken after the
// ones above it in its chain, which rules out deadlocks. Comments elsewhere
// point here rather than restating it.
//
//  1. A scheduler.Runner's pass lock (Begin to End), held for a whole pass
//     of the rotation tick (then 1a, 3) or of the purge of dead leased keys
//     (then 1a, 2, 3).
//     1a. A due index's lock (dueIndex.mu, schedule_index.go), held while
//     it loads or drops buckets of its pointers (storage is read and
//     written under it), by a pass before and after its work and by the
//     load at mount start, which holds nothing else: then only the
//     runner's queue, a leaf. A key change never takes it.
//  2. The governance state lock (governance.Runtime), held while the
//     governance state is loaded, changed and saved (Update: the tick, the
//     flush before alerts are listed), by an alert acknowledgement
//     (LockAlertChange) and while marks of purged keys are dropped
//     (DropMarks): then 3 (the sweep revokes idle keys), 6.
//     2b. The response engine's lock (responseEngine.mu,
//     response_policy.go), held while one alert's automated responses are
//     decided and taken, and by response policy writes: then 3, 6, 7.
//     2c. The bulk-operation lock (bulkOps.mu, operations.go), held by a
//     step of an operation while it changes keys or clients, and while an
//     operation is created or cancelled: then 3 and what 3 may take.
//  3. The entity locks of lockSets below: a client's lock, then a key's
//     lock, then a role's lock (issuance holds the role's read lock until
//     its key is stored, so a role delete, which checks that no key uses the
//     role under the role's write lock, cannot slip in between; role writes
//     and deletes take no client or key lock). Then 4, 5, 6.
//  4. approvals.mu (approval.go), for a request's state change: then 7.
//  5. configMu (backend.go), taken by config writes and by role writes
//     after the role's lock: then 5a (a config write lowering token_ttl
//     records it on the signing key), 7.
//     5a. The signing keys' lock (signing.Keys), otherwise taken with no
//     other lock held (token exchange, jwks/rotate and jwks/revoke,
//     initialize, the tick): then 7.
//  6. The governance alert-write lock (governance.Runtime): shared by
//     raising and acknowledging an alert from its write through its log
//     entry (LockAlertWrite), exclusive while the stored open alerts are
//     counted. Then 7.
//  7. The lifecycle log's own lock (eventlog.Log): a leaf.
//
// Webhook endpoints: an endpoint's lock in lockSets (API writes of the
// endpoint), then the outbox engine's per-endpoint lock (held by a delivery
// step, a replay or a delete), then 7. The engine's step holds no other
// lock of this list. The response policies it calls take theirs from the
// top while only the engine's follower lock is held, which nothing else
// takes.
//
// Every other lock is a leaf held for a few instructions and never while
// storage is read or written: the mount cache, the verify cache
// (verifycache.Cache), the usage tracker, the rate limiter, the detector
// (detect.Detector), the schedule queues and the rotation engine's rebuild
// and settled-commit guards.
//
// Each kind of entity lock has its own lock set, so a client and a key
// whose names hash alike never share a (non-reentrant) lock.
type lockSets struct {
	clients []*locksutil.LockEntry
	roles   []*locksutil.LockEntry
	keys    []*locksutil.LockEntry
	// endpoints serialise API changes of a webhook endpoint.
	endpoints []*locksutil.LockEntry
}

func newLockSets() lockSets {
	return lockSets{
		clients: locksutil.CreateLocks(),
		roles:   locksutil.CreateLocks(),
		keys:    locksutil.CreateLocks(),

		endpoints: locksutil.CreateLocks(),
	}
}

// client is a client's lock.
func (l *lockSets) client(client string) *locksutil.LockEntry {
	return locksutil.LockForKey(l.clients, client)
}

// role is a role's lock.
func (l *lockSets) role(role string) *locksutil.LockEntry {
	return locksutil.LockForKey(l.roles, role)
}

// lockEndpoint takes a webhook endpoint's lock and returns the function
// that releases it.
func (l *lockSets) lockEndpoint(name string) (unlock func()) {
	lock := locksutil.LockForKey(l.endpoints, name)
	lock.Lock()
	return lock.Unlock
}

// rlockRole takes a role's read lock for an issuance under it and returns
// the function that releases it; callers already hold the key's locks.
func (l *lockSets) rlockRole(role string) (unlock func()) {
	rl := l.role(role)
	rl.RLock()
	return rl.RUnlock
}

// key is a key's own lock (lockKey takes it with its client's).
func (l *lockSets) key(client, name string) *locksutil.LockEntry {
	return locksutil.LockForKey(l.keys, client+"/"+name)
}

// lockKey takes the locks for changing one key, in the documented order:
// the client's read lock (so a concurrent de-provisioning or lock-down,
// which takes it exclusively, waits) and then the key's own lock. It
// returns the function that releases both.
func (l *lockSets) lockKey(client, name string) (unlock func()) {
	clk := l.client(client)
	clk.RLock()
	lock := l.key(client, name)
	lock.Lock()
	return func() {
		lock.Unlock()
		clk.RUnlock()
	}
}
