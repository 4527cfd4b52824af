package backend

import (
	"github.com/hashicorp/vault/sdk/helper/locksutil"
)

// Lock order, to rule out deadlocks: client lock, then key lock, then role
// lock (issuance holds the role's read lock until its key is stored, so a
// role delete, which checks that no key uses the role under the role's
// write lock, cannot slip in between; role writes and deletes take no
// client or key lock). Each kind has its own lock set so a client and a key whose names hash alike never
// share a (non-reentrant) lock.
type lockSets struct {
	clients []*locksutil.LockEntry
	roles   []*locksutil.LockEntry
	keys    []*locksutil.LockEntry
}

func newLockSets() lockSets {
	return lockSets{
		clients: locksutil.CreateLocks(),
		roles:   locksutil.CreateLocks(),
		keys:    locksutil.CreateLocks(),
	}
}

func (b *apikeysBackend) clientLock(client string) *locksutil.LockEntry {
	return locksutil.LockForKey(b.locks.clients, client)
}

func (b *apikeysBackend) roleLock(role string) *locksutil.LockEntry {
	return locksutil.LockForKey(b.locks.roles, role)
}

// rlockRole takes a role's read lock for an issuance under it and returns
// the function that releases it; callers already hold the key's locks.
func (b *apikeysBackend) rlockRole(role string) (unlock func()) {
	l := b.roleLock(role)
	l.RLock()
	return l.RUnlock
}

func (b *apikeysBackend) keyLock(client, name string) *locksutil.LockEntry {
	return locksutil.LockForKey(b.locks.keys, client+"/"+name)
}

// lockKey takes the locks for changing one key, in the documented order:
// the client's read lock (so a concurrent de-provisioning or lock-down,
// which takes it exclusively, waits) and then the key's own lock. It
// returns the function that releases both.
func (b *apikeysBackend) lockKey(client, name string) (unlock func()) {
	clk := b.clientLock(client)
	clk.RLock()
	lock := b.keyLock(client, name)
	lock.Lock()
	return func() {
		lock.Unlock()
		clk.RUnlock()
	}
}
