package backend

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// hmacSecretBytes is the size of the per-mount HMAC secret.
const hmacSecretBytes = 32

type storedHMACSecret struct {
	Secret []byte `json:"secret"`
}

// hmacSecret returns the per-mount secret that keys are hashed under,
// creating it on first use. It lives in Vault storage (barrier-encrypted,
// seal-wrapped where available) and never leaves the plugin.
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
			return nil, fmt.Errorf("decoding HMAC secret: %w", err)
		}
	}
	if len(stored.Secret) != hmacSecretBytes {
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
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil))
}

// maxGenerateAttempts bounds regeneration on an HMAC collision, which at
// 128+ bits of entropy should never happen; hitting the bound means the
// random source is broken.
const maxGenerateAttempts = 5

// generateKey creates a fresh key whose HMAC is in no index entry, so a
// secret is never reused across keys or versions.
func (b *apikeysBackend) generateKey(ctx context.Context, s logical.Storage, cfg *Config, env string) (plaintext, hmacHex string, err error) {
	secret, err := b.hmacSecret(ctx, s)
	if err != nil {
		return "", "", err
	}
	for i := 0; i < maxGenerateAttempts; i++ {
		plaintext, err = keyformat.Generate(rand.Reader, cfg.KeyPrefix, env, cfg.EntropyBits)
		if err != nil {
			return "", "", err
		}
		hmacHex = keyHMAC(secret, plaintext)
		existing, err := b.getIndex(ctx, s, hmacHex)
		if err != nil {
			return "", "", err
		}
		if existing == nil {
			return plaintext, hmacHex, nil
		}
		b.logger.Warn("generated key collided with an existing key; regenerating", "attempt", i+1)
	}
	return "", "", fmt.Errorf("could not generate a unique key after %d attempts", maxGenerateAttempts)
}

// newKeyID returns a random non-secret identifier for a key.
func newKeyID() (string, error) {
	var buf [12]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", err
	}
	return "kid_" + hex.EncodeToString(buf[:]), nil
}
