package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Keys issued before key-id pointers existed (keyid_index.go) get theirs
// from a one-time backfill. Until it ends, an id without a pointer may
// still be such a key, so the inventory falls back to a scan.
const (
	storageKeyIDBackfill = "keyid_backfill"
	// keyIDBackfillBudget bounds the key records one tick's step reads.
	keyIDBackfillBudget = 2000
)

func (b *apikeysBackend) keyIDBackfill() backfill {
	return backfill{storageKey: storageKeyIDBackfill, what: "key id backfill", done: &b.keyIDsDone, step: b.keyIDBackfillStep}
}

// keyIDsBackfilled reports whether every key has its pointer.
func (b *apikeysBackend) keyIDsBackfilled(ctx context.Context, s logical.Storage) (bool, error) {
	return b.keyIDBackfill().finished(ctx, s)
}

func (b *apikeysBackend) keyIDBackfillTick(ctx context.Context, req *logical.Request) error {
	return b.keyIDBackfill().tick(ctx, req.Storage, b.logger)
}

// keyIDBackfillStep writes the missing pointers of the next keys. A
// pointer is only ever written for the key stored under its name.
func (b *apikeysBackend) keyIDBackfillStep(ctx context.Context, s logical.Storage, cursor string) (string, int, error) {
	written := 0
	w := keyWalk{After: cursor, Budget: keyIDBackfillBudget}
	next, err := w.step(ctx, b, s, func(k *record.Key) (bool, error) {
		p, err := s.Get(ctx, storageKeyIDPrefix+k.KeyID)
		if err != nil || p != nil {
			return err == nil, err
		}
		written++
		return true, b.putKeyIDPointer(ctx, s, k)
	})
	return next, written, err
}
