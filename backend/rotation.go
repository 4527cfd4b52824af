package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"
)

// Scheduled rotation (SPEC §4). Owned by the rotation work.

// scheduleKey tells the rotation schedule about a key's next due time.
func (b *apikeysBackend) scheduleKey(k *Key) {}

// initRotation builds the in-memory schedule when the backend starts.
func (b *apikeysBackend) initRotation(ctx context.Context, s logical.Storage) error { return nil }

// rotationTick rotates due keys and retires ended grace periods.
func (b *apikeysBackend) rotationTick(ctx context.Context, req *logical.Request) error { return nil }
