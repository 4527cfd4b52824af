package backend

import (
	"context"
	"strings"
	"sync"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/hashicorp/vault/sdk/logical"
)

// Verify-path caches (SPEC §5): verify reads an index entry, a key record,
// a role and a client, and must not pay a storage round trip for each on
// every call. The caches are bounded LRUs so memory stays flat however many
// keys a mount holds (a miss just costs one storage read).
//
// Correctness rules, because verify must never accept a key that was
// revoked, locked or retired once the change has returned:
//   - Every local write of a key, client or role drops the cached entry
//     while the writer still holds the object's lock (putKey → afterKeyWrite,
//     putClient → afterClientWrite, putRole, role delete: all route through
//     mountCache.invalidate), and other nodes drop it through Invalidate.
//   - A fill (read storage, then insert) could race with such a drop and
//     put back the state it read before the write. Every drop bumps a
//     generation counter of the entry's stripe; a fill records the
//     generation before reading storage and inserts only if it is unchanged.
//     So an entry in the cache was always read after the last drop of it.
//   - Cached objects are shared and must never be modified; management code
//     keeps reading storage through getKey/getRole/getClient under its locks.
const (
	verifyCacheKeys    = 10000
	verifyCacheIndex   = 20000
	verifyCacheRoles   = 4096
	verifyCacheClients = 8192
	cacheStripes       = 1024
)

type keyRef struct{ client, name string }

type verifyCache struct {
	mu      sync.Mutex
	index   *simplelru.LRU[string, record.IndexEntry]
	keys    *simplelru.LRU[keyRef, *record.Key]
	roles   *simplelru.LRU[string, *record.Role]
	clients *simplelru.LRU[string, *record.Client]
	// gen counts drops per stripe (hash of kind and name).
	gen [cacheStripes]uint64
}

func newVerifyCache() *verifyCache {
	return &verifyCache{
		index:   newLRU[string, record.IndexEntry](verifyCacheIndex),
		keys:    newLRU[keyRef, *record.Key](verifyCacheKeys),
		roles:   newLRU[string, *record.Role](verifyCacheRoles),
		clients: newLRU[string, *record.Client](verifyCacheClients),
	}
}

// newLRU returns a bounded least-recently-used map. simplelru (rather than
// golang-lru's locked Cache) because every user holds its own lock around
// it together with other state: the verify cache its generations, the
// alert detector its counters. NewLRU fails only for a size below one.
func newLRU[K comparable, V any](size int) *simplelru.LRU[K, V] {
	c, err := simplelru.NewLRU[K, V](max(size, 1), nil)
	if err != nil {
		panic("simplelru.NewLRU with a positive size: " + err.Error()) // unreachable
	}
	return c
}

// Cache kinds, mixed into the stripe hash.
const (
	kindIndex byte = iota + 1
	kindKey
	kindRole
	kindClient
)

// stripe hashes (kind, a, b) with FNV-1a without allocating.
func stripe(kind byte, a, b string) int {
	h := uint32(2166136261)
	h = (h ^ uint32(kind)) * 16777619
	for i := 0; i < len(a); i++ {
		h = (h ^ uint32(a[i])) * 16777619
	}
	h = (h ^ '/') * 16777619
	for i := 0; i < len(b); i++ {
		h = (h ^ uint32(b[i])) * 16777619
	}
	return int(h % cacheStripes)
}

// invalidate drops whatever a change of storageKey makes stale.
func (c *verifyCache) invalidate(storageKey string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.HasPrefix(storageKey, storageIndexPrefix):
		h := strings.TrimPrefix(storageKey, storageIndexPrefix)
		c.index.Remove(h)
		c.gen[stripe(kindIndex, h, "")]++
	case strings.HasPrefix(storageKey, storageKeyPrefix):
		client, name, ok := strings.Cut(strings.TrimPrefix(storageKey, storageKeyPrefix), "/")
		if !ok {
			return
		}
		c.keys.Remove(keyRef{client, name})
		c.gen[stripe(kindKey, client, name)]++
	case strings.HasPrefix(storageKey, storageRolePrefix):
		n := strings.TrimPrefix(storageKey, storageRolePrefix)
		c.roles.Remove(n)
		c.gen[stripe(kindRole, n, "")]++
	case strings.HasPrefix(storageKey, storageClientPrefix):
		n := strings.TrimPrefix(storageKey, storageClientPrefix)
		c.clients.Remove(n)
		c.gen[stripe(kindClient, n, "")]++
	}
}

// purge empties every cache (and fences in-flight fills).
func (c *verifyCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.index.Purge()
	c.keys.Purge()
	c.roles.Purge()
	c.clients.Purge()
	for i := range c.gen {
		c.gen[i]++
	}
}

// cachedLoad returns the cached value of k, or loads it with load and
// caches it unless a drop of its stripe happened meanwhile. Absent objects
// (ok false) are not cached.
func cachedLoad[K comparable, V any](c *verifyCache, table *simplelru.LRU[K, V], k K, st int, load func() (V, bool, error)) (V, bool, error) {
	c.mu.Lock()
	if v, ok := table.Get(k); ok {
		c.mu.Unlock()
		return v, true, nil
	}
	gen := c.gen[st]
	c.mu.Unlock()

	v, ok, err := load()
	if err != nil || !ok {
		return v, ok, err
	}
	c.mu.Lock()
	if c.gen[st] == gen {
		table.Add(k, v)
	}
	c.mu.Unlock()
	return v, true, nil
}

// cachedIndex returns the index entry of an HMAC, or nil.
func (b *apikeysBackend) cachedIndex(ctx context.Context, s logical.Storage, hmacHex string) (*record.IndexEntry, error) {
	c := b.cache.verify
	ie, ok, err := cachedLoad(c, c.index, hmacHex, stripe(kindIndex, hmacHex, ""), func() (record.IndexEntry, bool, error) {
		ie, err := b.getIndex(ctx, s, hmacHex)
		if err != nil || ie == nil {
			return record.IndexEntry{}, false, err
		}
		return *ie, true, nil
	})
	if err != nil || !ok {
		return nil, err
	}
	return &ie, nil
}

// cachedKey returns a shared, read-only key record, or nil. It is a
// verify view (see verifyView): no secrets, metadata or history.
func (b *apikeysBackend) cachedKey(ctx context.Context, s logical.Storage, client, name string) (*record.Key, error) {
	c := b.cache.verify
	k, _, err := cachedLoad(c, c.keys, keyRef{client, name}, stripe(kindKey, client, name), func() (*record.Key, bool, error) {
		k, err := b.getKey(ctx, s, client, name)
		if err != nil || k == nil {
			return nil, false, err
		}
		return verifyView(k), true, nil
	})
	return k, err
}

// verifyView copies the fields of a key that verify and its observers
// (alerts, token exchange) read. Leaving out plaintext secrets, metadata,
// issuer identity and revocation details keeps the cache small and keeps
// no plaintext in it.
func verifyView(k *record.Key) *record.Key {
	out := &record.Key{
		KeyID: k.KeyID, Client: k.Client, Name: k.Name, Role: k.Role, Owner: k.Owner,
		Scopes: k.Scopes, Environment: k.Environment, Retrievable: k.Retrievable, Leased: k.Leased,
		CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LastRotatedAt: k.LastRotatedAt, NextRotationAt: k.NextRotationAt,
		Revoked: k.Revoked, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt,
		Versions: make([]*record.KeyVersion, len(k.Versions)),
	}
	for i, v := range k.Versions {
		out.Versions[i] = &record.KeyVersion{
			Version: v.Version, State: v.State, HMAC: v.HMAC, CreatedAt: v.CreatedAt,
			ActivatedAt: v.ActivatedAt, GraceEndsAt: v.GraceEndsAt, RetiredAt: v.RetiredAt, RevokedAt: v.RevokedAt,
			LastVerifiedAt: v.LastVerifiedAt,
		}
	}
	return out
}

// cachedRole returns a shared, read-only role, or nil.
func (b *apikeysBackend) cachedRole(ctx context.Context, s logical.Storage, name string) (*record.Role, error) {
	c := b.cache.verify
	r, _, err := cachedLoad(c, c.roles, name, stripe(kindRole, name, ""), func() (*record.Role, bool, error) {
		r, err := b.getRole(ctx, s, name)
		return r, r != nil, err
	})
	return r, err
}

// cachedClient returns a shared, read-only client, or nil.
func (b *apikeysBackend) cachedClient(ctx context.Context, s logical.Storage, name string) (*record.Client, error) {
	c := b.cache.verify
	cl, _, err := cachedLoad(c, c.clients, name, stripe(kindClient, name, ""), func() (*record.Client, bool, error) {
		cl, err := b.getClient(ctx, s, name)
		return cl, cl != nil, err
	})
	return cl, err
}
