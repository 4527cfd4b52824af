package backend

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"
)

// Storage layout of one mount. Plaintext key material never appears in a
// storage key: keys are addressed by client and name, and the verify index
// by the HMAC of the key.
const (
	storageConfig     = "config"
	storageHMACSecret = "hmac-secret"
)

// getJSON reads the JSON record at key, or nil when there is none; what
// names the record in errors (e.g. `client "acme"`).
func getJSON[T any](ctx context.Context, s logical.Storage, key, what string) (*T, error) {
	entry, err := s.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	if entry == nil {
		return nil, nil
	}
	v := new(T)
	if err := entry.DecodeJSON(v); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", what, err)
	}
	return v, nil
}

// putJSON stores v as JSON at key; what names the record in errors.
func putJSON(ctx context.Context, s logical.Storage, key, what string, v any) error {
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		return err
	}
	return putEntry(ctx, s, entry, what)
}

// maxEntryBytes bounds every record the plugin stores. Vault's Raft
// storage refuses an entry above 1 MiB (its max_entry_size, which also
// counts the key and the barrier's overhead) and the request fails with a
// 500. The request limits (limits.go) keep every record far below this
// bound; reaching it means a record grew in a way nobody bounded, and the
// error says which record rather than Raft's "value too large".
const maxEntryBytes = 512 << 10

// errEntryTooLarge is the error of a record above maxEntryBytes.
var errEntryTooLarge = errors.New("too large to store")

// putEntry stores entry, refusing one above maxEntryBytes.
func putEntry(ctx context.Context, s logical.Storage, entry *logical.StorageEntry, what string) error {
	if n := len(entry.Value); n > maxEntryBytes {
		return fmt.Errorf("storing %s: %d bytes is %w (at most %d)", what, n, errEntryTooLarge, maxEntryBytes)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("storing %s: %w", what, err)
	}
	return nil
}
