package backend

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

const storageKeyPrefix = "keys/"

// Version states (SPEC §2): pending → active → previous → retired; any
// version can become revoked.
const (
	statePending  = "pending"
	stateActive   = "active"
	statePrevious = "previous"
	stateRetired  = "retired"
	stateRevoked  = "revoked"
	// Key-level states besides the above.
	stateExpired = "expired"
	stateLocked  = "locked"
)

// KeyVersion is one generation of a key's secret.
type KeyVersion struct {
	Version int    `json:"version"`
	State   string `json:"state"`
	// HMAC is the hex HMAC-SHA256 of the key under the mount's secret: the
	// only form of the secret kept for non-retrievable keys.
	HMAC string `json:"hmac"`
	// Secret is the plaintext, kept (barrier-encrypted) only when the role
	// makes keys retrievable.
	Secret       string    `json:"secret,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	ActivatedAt  time.Time `json:"activated_at,omitempty"`
	GraceEndsAt  time.Time `json:"grace_ends_at,omitempty"`
	RetiredAt    time.Time `json:"retired_at,omitempty"`
	RevokedAt    time.Time `json:"revoked_at,omitempty"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
	RevokedBy    *Actor    `json:"revoked_by,omitempty"`
	// LastVerifiedAt is the last successful verify of this version as last
	// flushed to storage (usage.go); rotation's adoption check reads it.
	LastVerifiedAt time.Time `json:"last_verified_at,omitempty"`
	// ApprovalID is the approval request this version was created under
	// (roles with requires_approval); it marks the approval used.
	ApprovalID string `json:"approval_id,omitempty"`
}

// Key is a credential of one client under one role (SPEC §2).
type Key struct {
	KeyID       string            `json:"key_id"`
	Client      string            `json:"client"`
	Name        string            `json:"name"`
	Role        string            `json:"role"`
	Owner       string            `json:"owner"`
	Scopes      []string          `json:"scopes"`
	Environment string            `json:"environment"`
	Purpose     string            `json:"purpose,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Retrievable bool              `json:"retrievable"`

	IssuedBy  Actor  `json:"issued_by"`
	RequestID string `json:"request_id,omitempty"`
	// ApprovalID is the approval request the key was issued under.
	ApprovalID string `json:"approval_id,omitempty"`
	// nextApproval is the approval a rotation in progress creates its
	// version under (rotateWithApproval); never stored.
	nextApproval string
	CreatedAt    time.Time `json:"created_at"`
	// ExpiresAt is a hard expiry (zero: none).
	ExpiresAt time.Time `json:"expires_at,omitempty"`

	LastRotatedAt  time.Time `json:"last_rotated_at"`
	NextRotationAt time.Time `json:"next_rotation_at,omitempty"`

	// Leased keys come from creds/ and live as long as their Vault lease.
	Leased bool `json:"leased,omitempty"`

	Revoked      bool      `json:"revoked,omitempty"`
	RevokedAt    time.Time `json:"revoked_at,omitempty"`
	RevokeReason string    `json:"revoke_reason,omitempty"`

	// LastUsedAt is the last successful verify as last flushed to storage.
	LastUsedAt time.Time `json:"last_used_at,omitempty"`
	// Usage is verify usage (counts, sources) as last flushed (usage.go).
	Usage *KeyUsage `json:"usage,omitempty"`

	Versions []*KeyVersion `json:"versions"`
	// LastCommit and LastWAL name the key's last commit with a WAL entry
	// (wal.go): a record naming a commit shows that commit's key write
	// happened, so an interrupted one is finished, not undone.
	LastCommit string `json:"last_commit,omitempty"`
	LastWAL    string `json:"last_wal,omitempty"`
	// TrimmedRevocations remembers revoked versions dropped from Versions
	// by trimVersions, so the client's revocation list keeps them
	// (newest last, at most maxTrimmedRevocations).
	TrimmedRevocations []revokedVersion `json:"trimmed_revocations,omitempty"`
}

// revokedVersion is what the revocation list needs of a revoked version
// that is no longer on the key record.
type revokedVersion struct {
	Version   int       `json:"version"`
	RevokedAt time.Time `json:"revoked_at"`
	Reason    string    `json:"reason,omitempty"`
	RevokedBy *Actor    `json:"revoked_by,omitempty"`
}

// indexEntry maps the HMAC of a key to the key record (storage "index/<hmac>").
type indexEntry struct {
	Client  string `json:"client"`
	Name    string `json:"name"`
	KeyID   string `json:"key_id"`
	Version int    `json:"version"`
}

const storageIndexPrefix = "index/"

func keyStorageKey(client, name string) string { return storageKeyPrefix + client + "/" + name }
func indexStorageKey(hmacHex string) string    { return storageIndexPrefix + hmacHex }

// current returns the active version, or nil.
func (k *Key) current() *KeyVersion {
	for _, v := range k.Versions {
		if v.State == stateActive {
			return v
		}
	}
	return nil
}

func (k *Key) versionByState(state string) *KeyVersion {
	for _, v := range k.Versions {
		if v.State == state {
			return v
		}
	}
	return nil
}

func (k *Key) version(n int) *KeyVersion {
	for _, v := range k.Versions {
		if v.Version == n {
			return v
		}
	}
	return nil
}

func (k *Key) latestVersion() int {
	n := 0
	for _, v := range k.Versions {
		if v.Version > n {
			n = v.Version
		}
	}
	return n
}

// state summarises the key for listings and the inventory.
func (k *Key) state(now time.Time) string {
	switch {
	case k.Revoked:
		return stateRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return stateExpired
	case k.current() != nil:
		return stateActive
	case k.versionByState(statePending) != nil:
		return statePending
	default:
		return stateRetired
	}
}

func (b *apikeysBackend) getKey(ctx context.Context, s logical.Storage, client, name string) (*Key, error) {
	return getJSON[Key](ctx, s, keyStorageKey(client, name), "key "+client+"/"+name)
}

// putKey stores the key record. Callers hold the key's lock.
func (b *apikeysBackend) putKey(ctx context.Context, s logical.Storage, k *Key) error {
	if err := putJSON(ctx, s, keyStorageKey(k.Client, k.Name), "key", k); err != nil {
		return err
	}
	b.afterKeyWrite(k)
	return nil
}

// afterKeyWrite runs after a key record changed on this node, while the
// key's lock is still held.
func (b *apikeysBackend) afterKeyWrite(k *Key) {
	b.cache.invalidate(keyStorageKey(k.Client, k.Name))
	b.trackLeasedKey(k)
}

func (b *apikeysBackend) getIndex(ctx context.Context, s logical.Storage, hmacHex string) (*indexEntry, error) {
	return getJSON[indexEntry](ctx, s, indexStorageKey(hmacHex), "key index")
}

func (b *apikeysBackend) putIndex(ctx context.Context, s logical.Storage, hmacHex string, ie indexEntry) error {
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
	err := b.forEachKey(ctx, s, func(k *Key) (bool, error) {
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
func (b *apikeysBackend) forEachKey(ctx context.Context, s logical.Storage, fn func(*Key) (bool, error)) error {
	clients, err := s.List(ctx, storageKeyPrefix)
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

func validateEnvironment(env string) error {
	if err := keyformat.ValidEnv(env); err != nil {
		return fmt.Errorf("environment %q is invalid: use 1-16 lowercase letters or digits (it becomes part of the key's visible prefix)", env)
	}
	return nil
}
