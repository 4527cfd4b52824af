package backend

import (
	"context"
	"fmt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// config returns the mount configuration (defaults when none is stored).
// The result is shared: callers must not modify it (use clone).
func (b *apikeysBackend) config(ctx context.Context, s logical.Storage) (*record.Config, error) {
	b.cache.mu.RLock()
	cfg := b.cache.config
	b.cache.mu.RUnlock()
	if cfg != nil {
		return cfg, nil
	}
	// Fill under the write lock, which putConfig, deleteConfig and
	// invalidate also hold: a fill that read storage before a concurrent
	// change can then never store the outdated copy after it.
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	if b.cache.config != nil {
		return b.cache.config, nil
	}
	entry, err := s.Get(ctx, storageConfig)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg = record.DefaultConfig()
	if entry != nil {
		if cfg, err = record.DecodeConfig(entry.Value); err != nil {
			return nil, err
		}
	}
	b.cache.config = cfg
	return cfg, nil
}

func (b *apikeysBackend) putConfig(ctx context.Context, s logical.Storage, cfg *record.Config) error {
	entry, err := logical.StorageEntryJSON(storageConfig, cfg)
	if err != nil {
		return err
	}
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	if err := putEntry(ctx, s, entry, "config"); err != nil {
		return err
	}
	b.cache.config = cfg
	return nil
}

func (b *apikeysBackend) deleteConfig(ctx context.Context, s logical.Storage) error {
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	if err := s.Delete(ctx, storageConfig); err != nil {
		return fmt.Errorf("deleting config: %w", err)
	}
	b.cache.config = nil
	return nil
}
