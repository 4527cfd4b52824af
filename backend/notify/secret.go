package notify

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
)

// SecretPrefix starts every signing secret, as Standard Webhooks writes
// them, so a secret is recognisable in a receiver's configuration.
const SecretPrefix = "whsec_"

// secretBytes is the size of a new secret: 256 bits, inside the 24 to 64
// bytes the specification recommends.
const secretBytes = 32

// Secrets outside these bounds are refused: shorter ones are too weak,
// longer ones gain nothing (HMAC-SHA256 hashes a key over 64 bytes first).
const (
	minSecretBytes = 24
	maxSecretBytes = 64
)

// NewSecret returns a new signing secret: SecretPrefix followed by the
// standard base64 encoding of 32 bytes from crypto/rand.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", errors.New("generating webhook secret: " + err.Error())
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// DecodeSecret returns the raw key bytes of a "whsec_..." secret. Its
// errors never contain the secret, so they may be shown and logged.
func DecodeSecret(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("webhook secret must start with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, errors.New("webhook secret is not valid base64 after " + SecretPrefix)
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		return nil, errors.New("webhook secret must hold 24 to 64 bytes")
	}
	return key, nil
}
