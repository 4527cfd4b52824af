package record

import (
	"fmt"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
)

// Actor is who caused an event: a Vault identity, or "system" for
// background work.
type Actor struct {
	Type        string `json:"type"` // "entity", "token" (no entity, e.g. root) or "system"
	EntityID    string `json:"entity_id,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Accessor    string `json:"accessor,omitempty"`
}

// Version states (SPEC §2): pending → active → previous → retired; any
// version can become revoked.
const (
	StatePending  = "pending"
	StateActive   = "active"
	StatePrevious = "previous"
	StateRetired  = "retired"
	StateRevoked  = "revoked"
	// Key-level states besides the above.
	StateExpired  = "expired"
	StateLocked   = "locked"
	StateDisabled = "disabled"
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
	// flushed to storage (package usage); rotation's adoption check reads it.
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
	// NextApproval is the approval a rotation in progress creates its
	// version under (the backend's rotateKeyApproved); never stored.
	NextApproval string    `json:"-"`
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

	// Disabled stops the key verifying (code "disabled") until it is
	// enabled again; unlike a revocation it is reversible, and its versions,
	// rotation schedule and history carry on untouched.
	Disabled       bool      `json:"disabled,omitempty"`
	DisabledAt     time.Time `json:"disabled_at,omitempty"`
	DisabledReason string    `json:"disabled_reason,omitempty"`
	DisabledBy     *Actor    `json:"disabled_by,omitempty"`
	// Predecessors are the key ids of the revoked keys that held this name
	// before a re-issue, oldest first; each is archived under its key id.
	Predecessors []string `json:"predecessors,omitempty"`

	// LastUsedAt is the last successful verify as last flushed to storage.
	LastUsedAt time.Time `json:"last_used_at,omitempty"`
	// Usage is verify usage (counts, sources) as last flushed (package usage).
	Usage *KeyUsage `json:"usage,omitempty"`

	Versions []*KeyVersion `json:"versions"`
	// LastCommit and LastWAL name the key's last commit with a WAL entry
	// (backend/wal.go): a record naming a commit shows that commit's key write
	// happened, so an interrupted one is finished, not undone.
	LastCommit string `json:"last_commit,omitempty"`
	LastWAL    string `json:"last_wal,omitempty"`
	// TrimmedRevocations remembers revoked versions dropped from Versions
	// by TrimVersions, so the client's revocation list keeps them
	// (newest last, at most MaxTrimmedRevocations).
	TrimmedRevocations []RevokedVersion `json:"trimmed_revocations,omitempty"`
	// Operation is the bulk operation (Operation.ID) that last changed the
	// key, written in the same commit as the change, so a step resumed
	// after a crash recognises the keys it already did.
	Operation string `json:"operation,omitempty"`
	// RotationPointer and PurgePointer are the due times of the key's
	// pointers in the schedules' due index (backend/schedule_index.go),
	// written before the record: a change stores a new pointer only when
	// its due time differs.
	RotationPointer time.Time `json:"rotation_pointer,omitzero"`
	PurgePointer    time.Time `json:"purge_pointer,omitzero"`
}

// RevokedVersion is what the revocation list needs of a revoked version
// that is no longer on the key record.
type RevokedVersion struct {
	Version   int       `json:"version"`
	RevokedAt time.Time `json:"revoked_at"`
	Reason    string    `json:"reason,omitempty"`
	RevokedBy *Actor    `json:"revoked_by,omitempty"`
}

// IndexEntry maps the HMAC of a key to the key record (storage "index/<hmac>").
type IndexEntry struct {
	Client  string `json:"client"`
	Name    string `json:"name"`
	KeyID   string `json:"key_id"`
	Version int    `json:"version"`
}

// Current returns the active version, or nil.
func (k *Key) Current() *KeyVersion {
	for _, v := range k.Versions {
		if v.State == StateActive {
			return v
		}
	}
	return nil
}

func (k *Key) VersionByState(state string) *KeyVersion {
	for _, v := range k.Versions {
		if v.State == state {
			return v
		}
	}
	return nil
}

func (k *Key) Version(n int) *KeyVersion {
	for _, v := range k.Versions {
		if v.Version == n {
			return v
		}
	}
	return nil
}

func (k *Key) LatestVersion() int {
	n := 0
	for _, v := range k.Versions {
		if v.Version > n {
			n = v.Version
		}
	}
	return n
}

// State summarises the key for listings and the inventory.
func (k *Key) State(now time.Time) string {
	switch {
	case k.Revoked:
		return StateRevoked
	case !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt):
		return StateExpired
	case k.Disabled:
		return StateDisabled
	case k.Current() != nil:
		return StateActive
	case k.VersionByState(StatePending) != nil:
		return StatePending
	default:
		return StateRetired
	}
}

func ValidateEnvironment(env string) error {
	if err := keyformat.ValidEnv(env); err != nil {
		return fmt.Errorf("environment %q is invalid: use 1-16 lowercase letters or digits (it becomes part of the key's visible prefix)", env)
	}
	return nil
}
