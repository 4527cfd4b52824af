package backend

import (
	"context"
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
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("storing %s: %w", what, err)
	}
	return nil
}
