package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

const storageLogConfig = "log/config"

// Bounds of the log settings.
const (
	defaultCheckpointInterval = time.Hour
	minCheckpointInterval     = time.Minute
	maxCheckpointInterval     = 720 * time.Hour
	// minLogRetention keeps the newest minute whatever is configured: the
	// recovery of an interrupted change reads its own recent entries back.
	// A webhook endpoint not yet delivered an archived entry misses it, so
	// the README asks for a retention above notifications' retry_window.
	minLogRetention = time.Minute
	maxLogRetention = 100 * 8760 * time.Hour
)

// logConfig is the mount's lifecycle-log settings (log/config).
type logConfig struct {
	// CheckpointInterval is how often the periodic function signs a new
	// checkpoint when the log has grown.
	CheckpointInterval time.Duration `json:"checkpoint_interval"`
	// Retention is how old an entry must be before an operator may
	// archive it away (log/archive); 0 keeps every entry.
	Retention time.Duration `json:"retention"`
}

func (b *apikeysBackend) logConfig(ctx context.Context, s logical.Storage) (logConfig, error) {
	c := logConfig{CheckpointInterval: defaultCheckpointInterval}
	entry, err := s.Get(ctx, storageLogConfig)
	if err != nil {
		return c, fmt.Errorf("reading log config: %w", err)
	}
	if entry != nil {
		if err := entry.DecodeJSON(&c); err != nil {
			return c, fmt.Errorf("decoding log config: %w", err)
		}
	}
	return c, nil
}

func putLogConfig(ctx context.Context, s logical.Storage, c logConfig) error {
	entry, err := logical.StorageEntryJSON(storageLogConfig, c)
	if err != nil {
		return err
	}
	return s.Put(ctx, entry)
}
