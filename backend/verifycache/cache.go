package verifycache

import (
	"sync"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Table sizes: what a mount keeps at most, whatever its number of keys.
const (
	maxKeys    = 10000
	maxIndex   = 20000
	maxRoles   = 4096
	maxClients = 8192
	stripes    = 1024
)

type keyRef struct{ client, name string }

// Cache is a mount's verify-path cache. The zero value is not usable: call
// New.
type Cache struct {
	mu      sync.Mutex
	index   *simplelru.LRU[string, record.IndexEntry]
	keys    *simplelru.LRU[keyRef, *record.Key]
	roles   *simplelru.LRU[string, *record.Role]
	clients *simplelru.LRU[string, *record.Client]
	// gen counts drops per stripe (hash of kind and name).
	gen [stripes]uint64
	// absent holds absence notes by request (absence.go).
	absent *simplelru.LRU[string, absence]
}

// New returns an empty cache.
func New() *Cache {
	return &Cache{
		index:   newLRU[string, record.IndexEntry](maxIndex),
		keys:    newLRU[keyRef, *record.Key](maxKeys),
		roles:   newLRU[string, *record.Role](maxRoles),
		clients: newLRU[string, *record.Client](maxClients),
		absent:  newLRU[string, absence](maxAbsenceNotes),
	}
}

// newLRU returns a bounded least-recently-used map. simplelru (rather than
// golang-lru's locked Cache) because the tables and the generations are
// guarded together by Cache.mu. NewLRU fails only for a size below one.
func newLRU[K comparable, V any](size int) *simplelru.LRU[K, V] {
	c, err := simplelru.NewLRU[K, V](max(size, 1), nil)
	if err != nil {
		panic("simplelru.NewLRU with a positive size: " + err.Error()) // unreachable
	}
	return c
}

// Kinds of record, mixed into the stripe hash.
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
	return int(h % stripes)
}

// load returns the cached value of k, or loads it with load and caches it
// unless a drop of its stripe happened meanwhile. Absent objects (ok
// false) are not cached. The mutex is not held while load runs.
func load[K comparable, V any](c *Cache, table *simplelru.LRU[K, V], k K, st int, load func() (V, bool, error)) (V, bool, error) {
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
