package backend

import (
	"context"
	"strings"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// storageKeyIDPrefix holds one pointer per key id to the key's record, so
// the inventory finds a key by id without scanning. The pointer is written
// before the key's issuance commit: a pointer whose key never got stored,
// was purged or was replaced under its name resolves to nothing, which is
// the right answer for that id. Key ids are "kid_" and hex, never secret.
const storageKeyIDPrefix = "keyids/"

type keyIDPointer struct {
	Client string `json:"client"`
	Name   string `json:"name"`
}

func (b *apikeysBackend) putKeyIDPointer(ctx context.Context, s logical.Storage, k *record.Key) error {
	return putJSON(ctx, s, storageKeyIDPrefix+k.KeyID, "key id pointer", keyIDPointer{Client: k.Client, Name: k.Name})
}

// keyByID resolves a key id through its pointer. found is false when the
// id has no pointer (a key issued before pointers existed, or no such key):
// the caller then falls back to a bounded scan. With a pointer, k is the
// key, or nil when the id no longer names a stored key.
func (b *apikeysBackend) keyByID(ctx context.Context, s logical.Storage, keyID string) (k *record.Key, found bool, err error) {
	if !strings.HasPrefix(keyID, "kid_") || strings.ContainsAny(keyID, "/.") {
		return nil, false, nil
	}
	p, err := getJSON[keyIDPointer](ctx, s, storageKeyIDPrefix+keyID, "key id pointer")
	if err != nil || p == nil {
		return nil, false, err
	}
	k, err = b.getKey(ctx, s, p.Client, p.Name)
	if err != nil || k == nil || k.KeyID != keyID {
		return nil, true, err
	}
	return k, true, nil
}
