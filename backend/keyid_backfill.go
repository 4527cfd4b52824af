package backend

import (
	"context"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Keys issued before key-id pointers existed (keyid_index.go) get theirs
// from a one-time walk, a bounded step per periodic tick. Until it ends,
// an id without a pointer may still be such a key, so the inventory falls
// back to a scan; after it, a missing pointer means no such key.
const (
	storageKeyIDBackfill = "keyid_backfill"
	// keyIDBackfillBudget bounds the key records one tick's step reads.
	keyIDBackfillBudget = 2000
)

type keyIDBackfill struct {
	Cursor  string `json:"cursor,omitempty"`
	Written int    `json:"written"`
	Done    bool   `json:"done"`
}

func (b *apikeysBackend) keyIDBackfillState(ctx context.Context, s logical.Storage) (*keyIDBackfill, error) {
	st, err := getJSON[keyIDBackfill](ctx, s, storageKeyIDBackfill, "key id backfill")
	if err != nil || st == nil {
		return &keyIDBackfill{}, err
	}
	return st, nil
}

// keyIDsBackfilled reports whether every key has its pointer.
func (b *apikeysBackend) keyIDsBackfilled(ctx context.Context, s logical.Storage) (bool, error) {
	if b.keyIDsDone.Load() {
		return true, nil
	}
	st, err := b.keyIDBackfillState(ctx, s)
	if err != nil {
		return false, err
	}
	if st.Done {
		b.keyIDsDone.Store(true)
	}
	return st.Done, nil
}

// keyIDBackfillTick writes the missing pointers of the next keys. A
// pointer is only ever written for the key stored under its name, so a
// step redone after a crash writes the same pointers again.
func (b *apikeysBackend) keyIDBackfillTick(ctx context.Context, req *logical.Request) error {
	if done, err := b.keyIDsBackfilled(ctx, req.Storage); err != nil || done {
		return err
	}
	s := req.Storage
	st, err := b.keyIDBackfillState(ctx, s)
	if err != nil {
		return err
	}
	w := keyWalk{After: st.Cursor, Budget: keyIDBackfillBudget}
	cursor, err := w.step(ctx, b, s, func(k *record.Key) (bool, error) {
		p, err := s.Get(ctx, storageKeyIDPrefix+k.KeyID)
		if err != nil || p != nil {
			return err == nil, err
		}
		st.Written++
		return true, b.putKeyIDPointer(ctx, s, k)
	})
	if err != nil {
		return err
	}
	st.Cursor, st.Done = cursor, cursor == ""
	if err := putJSON(ctx, s, storageKeyIDBackfill, "key id backfill", st); err != nil {
		return err
	}
	if st.Done {
		b.keyIDsDone.Store(true)
		b.logger.Info("every key has its key-id pointer", "written", st.Written)
	}
	return nil
}
