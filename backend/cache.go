package backend

import (
	"sync"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/ratelimit"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/usage"
)

// mountCache holds per-mount state that is read on hot paths and changes
// rarely: the mount configuration and the HMAC secret. Writers on this node
// update it after storing; other nodes drop it through Invalidate.
type mountCache struct {
	mu         sync.RWMutex
	config     *record.Config
	hmacSecret []byte
	// hmacStates pools verify's HMAC states; per mount, because each mount
	// (all served by one multiplexed process) has its own secret.
	hmacStates sync.Pool

	// Verify hot path (keycache.go, packages usage and ratelimit).
	verify *verifyCache
	usage  *usage.Tracker
	limits *ratelimit.Limiter
}

func newMountCache() *mountCache {
	return &mountCache{verify: newVerifyCache(), usage: usage.NewTracker(), limits: ratelimit.New()}
}

func (c *mountCache) invalidate(storageKey string) {
	c.verify.invalidate(storageKey)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch storageKey {
	case storageConfig:
		c.config = nil
	case storageHMACSecret:
		c.hmacSecret = nil
	}
}
