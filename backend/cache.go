package backend

import (
	"strings"
	"sync"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/ratelimit"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/usage"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/verifycache"
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

	// Verify hot path.
	verify *verifycache.Cache
	usage  *usage.Tracker
	limits *ratelimit.Limiter

	// responses are the automated response policies (response_policy.go).
	responses responsePolicyCache
}

func newMountCache() *mountCache {
	return &mountCache{verify: verifycache.New(), usage: usage.NewTracker(), limits: ratelimit.New()}
}

// invalidate drops whatever a change of storageKey makes stale.
func (c *mountCache) invalidate(storageKey string) {
	c.dropVerify(storageKey)
	if strings.HasPrefix(storageKey, storageResponsePolicyPrefix) {
		c.responses.drop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch storageKey {
	case storageConfig:
		c.config = nil
	case storageHMACSecret:
		c.hmacSecret = nil
	}
}

// dropVerify maps a storage key to the verify cache's entry it stores.
// The mapping lives here, next to the storage layout, so the cache itself
// knows records only by name.
func (c *mountCache) dropVerify(storageKey string) {
	if h, ok := strings.CutPrefix(storageKey, storageIndexPrefix); ok {
		c.verify.DropIndex(h)
	} else if rest, ok := strings.CutPrefix(storageKey, storageKeyPrefix); ok {
		if client, name, ok := strings.Cut(rest, "/"); ok {
			c.verify.DropKey(client, name)
		}
	} else if n, ok := strings.CutPrefix(storageKey, storageRolePrefix); ok {
		c.verify.DropRole(n)
	} else if n, ok := strings.CutPrefix(storageKey, storageClientPrefix); ok {
		c.verify.DropClient(n)
	}
}
