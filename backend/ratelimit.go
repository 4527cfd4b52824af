package backend

import (
	"sync"
	"time"
)

// rateLimiter enforces a role's rate_limit: at most limit successful
// verifies per key within each fixed window of rate_limit_window. State is
// in memory and per node (a cluster admits up to limit per node), so the
// hot path never writes storage.
type rateLimiter struct {
	mu      sync.Mutex
	windows map[string]*rateWindow // by key_id
}

type rateWindow struct {
	ends  time.Time
	count int
}

func newRateLimiter() *rateLimiter {
	return &rateLimiter{windows: make(map[string]*rateWindow)}
}

// allow counts one verify of key id and reports whether it is within limit.
func (r *rateLimiter) allow(id string, limit int, window time.Duration, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.windows[id]
	if w == nil {
		w = &rateWindow{}
		r.windows[id] = w
	}
	if !now.Before(w.ends) {
		w.ends, w.count = now.Add(window), 0
	}
	if w.count >= limit {
		return false
	}
	w.count++
	return true
}

// forget drops the state of a key (revoked keys never verify again).
func (r *rateLimiter) forget(id string) {
	r.mu.Lock()
	delete(r.windows, id)
	r.mu.Unlock()
}

// prune drops windows that have ended, bounding memory to the keys
// verified within their current window.
func (r *rateLimiter) prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, w := range r.windows {
		if !now.Before(w.ends) {
			delete(r.windows, id)
		}
	}
}
