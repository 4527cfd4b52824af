package signing

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
)

// storageKey is where the set is stored, as the JSON of jwtsign.KeySet.
const storageKey = "signing/keys"

// errTooLarge is the error of a set above the mount's record bound.
var errTooLarge = errors.New("too large to store")

// Read returns the stored set, empty when the mount has no key yet. It
// takes no lock: a concurrent change stores a whole new set, so a read sees
// the old one or the new one.
func (k *Keys) Read(ctx context.Context, s logical.Storage) (*jwtsign.KeySet, error) {
	entry, err := s.Get(ctx, storageKey)
	if err != nil {
		return nil, fmt.Errorf("reading signing keys: %w", err)
	}
	set := &jwtsign.KeySet{}
	if entry == nil {
		return set, nil
	}
	if err := entry.DecodeJSON(set); err != nil {
		return nil, fmt.Errorf("decoding signing keys: %w", err)
	}
	return set, nil
}

// put stores set; the caller holds k.mu.
func (k *Keys) put(ctx context.Context, s logical.Storage, set *jwtsign.KeySet) error {
	entry, err := logical.StorageEntryJSON(storageKey, set)
	if err != nil {
		return err
	}
	if n := len(entry.Value); n > k.maxEntryBytes {
		return fmt.Errorf("storing signing keys: %d bytes is %w (at most %d)", n, errTooLarge, k.maxEntryBytes)
	}
	if err := s.Put(ctx, entry); err != nil {
		return fmt.Errorf("storing signing keys: %w", err)
	}
	return nil
}
