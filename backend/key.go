package backend

import (
	"context"
	"strings"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

const storageKeyPrefix = "keys/"

const storageIndexPrefix = "index/"

func keyStorageKey(client, name string) string { return storageKeyPrefix + client + "/" + name }
func indexStorageKey(hmacHex string) string    { return storageIndexPrefix + hmacHex }

func (b *apikeysBackend) getKey(ctx context.Context, s logical.Storage, client, name string) (*record.Key, error) {
	return getJSON[record.Key](ctx, s, keyStorageKey(client, name), "key "+client+"/"+name)
}

// putKey stores the key record. Callers hold the key's lock.
func (b *apikeysBackend) putKey(ctx context.Context, s logical.Storage, k *record.Key) error {
	if err := putJSON(ctx, s, keyStorageKey(k.Client, k.Name), "key", k); err != nil {
		return err
	}
	b.afterKeyWrite(k)
	return nil
}

// afterKeyWrite runs after a key record changed on this node, while the
// key's lock is still held.
func (b *apikeysBackend) afterKeyWrite(k *record.Key) {
	b.cache.invalidate(keyStorageKey(k.Client, k.Name))
}

func (b *apikeysBackend) getIndex(ctx context.Context, s logical.Storage, hmacHex string) (*record.IndexEntry, error) {
	return getJSON[record.IndexEntry](ctx, s, indexStorageKey(hmacHex), "key index")
}

func (b *apikeysBackend) putIndex(ctx context.Context, s logical.Storage, hmacHex string, ie record.IndexEntry) error {
	return putJSON(ctx, s, indexStorageKey(hmacHex), "key index", ie)
}

// listClientKeys returns the key names of one client.
func (b *apikeysBackend) listClientKeys(ctx context.Context, s logical.Storage, client string) ([]string, error) {
	return s.List(ctx, storageKeyPrefix+client+"/")
}

// keysUsingRole returns up to limit "client/name" of keys under role that
// are not revoked (limit 0: all).
func (b *apikeysBackend) keysUsingRole(ctx context.Context, s logical.Storage, role string, limit int) ([]string, error) {
	var out []string
	err := b.forEachKey(ctx, s, func(k *record.Key) (bool, error) {
		if k.Role == role && !k.Revoked {
			out = append(out, k.Client+"/"+k.Name)
			if limit > 0 && len(out) >= limit {
				return false, nil
			}
		}
		return true, nil
	})
	return out, err
}

// forEachKey calls fn for every key of the mount until fn returns false.
func (b *apikeysBackend) forEachKey(ctx context.Context, s logical.Storage, fn func(*record.Key) (bool, error)) error {
	clients, err := listKeyClients(ctx, s)
	if err != nil {
		return err
	}
	for _, c := range clients {
		c = strings.TrimSuffix(c, "/")
		names, err := b.listClientKeys(ctx, s, c)
		if err != nil {
			return err
		}
		for _, n := range names {
			k, err := b.getKey(ctx, s, c, n)
			if err != nil {
				return err
			}
			if k == nil {
				continue
			}
			more, err := fn(k)
			if err != nil || !more {
				return err
			}
		}
	}
	return nil
}
