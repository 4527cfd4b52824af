package backend

import (
	"context"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/usage"
	"github.com/hashicorp/vault/sdk/logical"
)

// flushUsage writes the usage verify buffered (package usage) to the key
// records; called from the periodic func about once a minute, and when the
// mount stops.
func (b *apikeysBackend) flushUsage(ctx context.Context, req *logical.Request) error {
	b.cache.limits.Prune(b.clock.Now())
	return b.cache.usage.Flush(ctx, func(sn usage.Snapshot) error {
		return b.persistUsage(ctx, req.Storage, sn)
	})
}

// persistUsage merges one snapshot into its key record under the locks.
func (b *apikeysBackend) persistUsage(ctx context.Context, s logical.Storage, sn usage.Snapshot) error {
	defer b.locks.lockKey(sn.Client, sn.Name)()
	k, err := b.getKey(ctx, s, sn.Client, sn.Name)
	if err != nil {
		return err
	}
	if k == nil || k.KeyID != sn.KeyID {
		return nil // the key is gone: nothing to keep the usage on
	}
	sn.MergeInto(k)
	return b.putKey(ctx, s, k)
}
