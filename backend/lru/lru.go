// Package lru is a small, allocation-light least-recently-used map with a
// fixed capacity. It is not safe for concurrent use: callers hold their own
// lock (the verify caches wrap it in a mutex together with other state).
package lru

import "container/list"

// Cache maps keys to values and holds at most Cap entries; adding beyond
// that evicts the least recently used entry.
type Cache[K comparable, V any] struct {
	cap   int
	ll    *list.List
	items map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key K
	val V
}

// New returns a cache holding at most capacity entries (at least 1).
func New[K comparable, V any](capacity int) *Cache[K, V] {
	if capacity < 1 {
		capacity = 1
	}
	return &Cache[K, V]{cap: capacity, ll: list.New(), items: make(map[K]*list.Element)}
}

// Get returns the value for key and marks it most recently used.
func (c *Cache[K, V]) Get(key K) (V, bool) {
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Peek returns the value for key without changing its recency.
func (c *Cache[K, V]) Peek(key K) (V, bool) {
	if el, ok := c.items[key]; ok {
		return el.Value.(*entry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Add sets key to val, making it most recently used. It reports whether an
// older entry was evicted to make room.
func (c *Cache[K, V]) Add(key K, val V) (evicted bool) {
	if el, ok := c.items[key]; ok {
		el.Value.(*entry[K, V]).val = val
		c.ll.MoveToFront(el)
		return false
	}
	c.items[key] = c.ll.PushFront(&entry[K, V]{key: key, val: val})
	if c.ll.Len() > c.cap {
		oldest := c.ll.Back()
		c.ll.Remove(oldest)
		delete(c.items, oldest.Value.(*entry[K, V]).key)
		return true
	}
	return false
}

// Remove deletes key and reports whether it was present.
func (c *Cache[K, V]) Remove(key K) bool {
	el, ok := c.items[key]
	if !ok {
		return false
	}
	c.ll.Remove(el)
	delete(c.items, key)
	return true
}

// Len is the number of entries.
func (c *Cache[K, V]) Len() int { return c.ll.Len() }

// Purge removes every entry.
func (c *Cache[K, V]) Purge() {
	c.ll.Init()
	clear(c.items)
}
