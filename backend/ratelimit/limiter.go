package ratelimit

import (
	"sync"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Limiter holds the current window of each key verified recently.
type Limiter struct {
	mu      sync.Mutex
	windows map[string]*window // by key_id
}

type window struct {
	ends  time.Time
	count int
}

// New returns an empty limiter.
func New() *Limiter {
	return &Limiter{windows: make(map[string]*window)}
}

// Allow counts one verify of key id and reports whether it is within limit.
func (r *Limiter) Allow(id string, limit int, every time.Duration, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.windows[id]
	if w == nil {
		w = &window{}
		r.windows[id] = w
	}
	if !now.Before(w.ends) {
		w.ends, w.count = now.Add(every), 0
	}
	if w.count >= limit {
		return false
	}
	w.count++
	return true
}

// Forget drops the state of a key (revoked keys never verify again).
func (r *Limiter) Forget(id string) {
	r.mu.Lock()
	delete(r.windows, id)
	r.mu.Unlock()
}

// KeyRevoked runs after versions of a key were revoked, under the key's
// lock: once the key itself is revoked its window is no longer needed.
// (Its buffered usage stays: that is history.)
func (r *Limiter) KeyRevoked(k *record.Key) {
	if k.Revoked {
		r.Forget(k.KeyID)
	}
}

// Prune drops windows that have ended, bounding memory to the keys
// verified within their current window.
func (r *Limiter) Prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, w := range r.windows {
		if !now.Before(w.ends) {
			delete(r.windows, id)
		}
	}
}
