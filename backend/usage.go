package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Usage tracking (SPEC §5 verify, §6 stale keys). Owned by the verify work.

// lastUsed returns when a key was last verified successfully.
func (b *apikeysBackend) lastUsed(k *Key) time.Time { return k.LastUsedAt }

// versionLastVerified returns when a version of a key was last verified
// successfully on this mount (zero: never). Rotation uses it to decide
// whether a new version has been adopted.
func (b *apikeysBackend) versionLastVerified(k *Key, version int) time.Time { return time.Time{} }

// onKeyRevoked runs after versions of a key were revoked, under its lock.
func (b *apikeysBackend) onKeyRevoked(k *Key, versions []int, at time.Time) {}

// flushUsage writes buffered usage to storage; called from the periodic func.
func (b *apikeysBackend) flushUsage(ctx context.Context, req *logical.Request) error { return nil }
