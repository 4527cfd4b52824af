package backend

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"sync"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// hmacSecretBytes is the size of the per-mount HMAC secret.
const hmacSecretBytes = 32

type storedHMACSecret struct {
	Secret []byte `json:"secret"`
}

// hmacSecret returns the per-mount secret that keys are hashed under,
// creating it on first use. It lives in Vault storage (barrier-encrypted,
// seal-wrapped where available) and never leaves the plugin.
//
// Only a missing secret is created. A stored one that does not decode or
// has the wrong length is an error, never replaced: every key of the mount
// is stored as an HMAC under it, so a new secret would silently invalidate
// them all, and the stored one is what an operator must restore (e.g. from
// a storage snapshot).
func (b *apikeysBackend) hmacSecret(ctx context.Context, s logical.Storage) ([]byte, error) {
	b.cache.mu.RLock()
	secret := b.cache.hmacSecret
	b.cache.mu.RUnlock()
	if secret != nil {
		return secret, nil
	}
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	if b.cache.hmacSecret != nil {
		return b.cache.hmacSecret, nil
	}
	entry, err := s.Get(ctx, storageHMACSecret)
	if err != nil {
		return nil, fmt.Errorf("reading HMAC secret: %w", err)
	}
	var stored storedHMACSecret
	if entry != nil {
		if err := entry.DecodeJSON(&stored); err != nil {
			return nil, fmt.Errorf("decoding the stored HMAC secret (%s): %w; it is not replaced, as every key of the mount is stored under it: restore it from a backup", storageHMACSecret, err)
		}
		if len(stored.Secret) != hmacSecretBytes {
			return nil, fmt.Errorf("the stored HMAC secret (%s) is %d bytes, want %d: it is corrupt and is not replaced, as every key of the mount is stored under it: restore it from a backup", storageHMACSecret, len(stored.Secret), hmacSecretBytes)
		}
	} else {
		stored.Secret = make([]byte, hmacSecretBytes)
		if _, err := rand.Read(stored.Secret); err != nil {
			return nil, fmt.Errorf("generating HMAC secret: %w", err)
		}
		entry, err := logical.StorageEntryJSON(storageHMACSecret, stored)
		if err != nil {
			return nil, err
		}
		if err := s.Put(ctx, entry); err != nil {
			return nil, fmt.Errorf("storing HMAC secret: %w", err)
		}
	}
	b.cache.hmacSecret = stored.Secret
	return stored.Secret, nil
}

// keyHMAC returns the hex HMAC-SHA256 of a presented key.
func keyHMAC(secret []byte, key string) string {
	sum := hmacSum(nil, secret, key)
	return hex.EncodeToString(sum[:])
}

// pooledHMAC is an HMAC state bound to the secret it was keyed with.
type pooledHMAC struct {
	secret []byte
	h      hash.Hash
}

// hmacSum returns HMAC-SHA256(secret, key). With a pool (verify passes the
// mount's) it reuses HMAC states instead of allocating one per call; a
// state keyed with another secret is never reused.
func hmacSum(pool *sync.Pool, secret []byte, key string) [sha256.Size]byte {
	var p *pooledHMAC
	if pool != nil {
		p, _ = pool.Get().(*pooledHMAC)
	}
	if p == nil || !hmac.Equal(p.secret, secret) {
		p = &pooledHMAC{secret: secret, h: hmac.New(sha256.New, secret)}
	}
	p.h.Reset()
	p.h.Write([]byte(key))
	var out [sha256.Size]byte
	p.h.Sum(out[:0])
	if pool != nil {
		pool.Put(p)
	}
	return out
}

// generateKey creates a fresh key and its HMAC. It does not look the HMAC
// up in the index to rule out a repeat: the random part carries at least
// keyformat.MinEntropyBits (128) bits from crypto/rand, so among a billion
// keys the chance of any two alike is below 2^-68, far less than that of a
// storage fault, and the lookup would cost every issuance and rotation a
// storage round trip into Vault (issuance throughput follows their number).
// crypto/rand does not fail or degrade silently: Go aborts the process if
// the kernel's generator is unavailable.
func (b *apikeysBackend) generateKey(ctx context.Context, s logical.Storage, cfg *record.Config, env string) (plaintext, hmacHex string, err error) {
	secret, err := b.hmacSecret(ctx, s)
	if err != nil {
		return "", "", err
	}
	plaintext, err = keyformat.Generate(rand.Reader, cfg.KeyPrefix, env, cfg.EntropyBits)
	if err != nil {
		return "", "", err
	}
	return plaintext, keyHMAC(secret, plaintext), nil
}

// newKeyID returns a random non-secret identifier for a key.
func newKeyID() (string, error) {
	id, err := randomHex(12)
	return "kid_" + id, err
}

// randomHex returns n random bytes from crypto/rand, hex-encoded: the
// non-secret identifiers of keys, leased key names and commits.
func randomHex(n int) (string, error) {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf), nil
}
