package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Re-issue under the same name. Writing keys/<client>/<name> with a role
// when the key there is revoked issues a new key (new key id, fresh
// versions) under that name, so whatever reads the path (a Vault Agent
// template) keeps working after an incident. The revoked record is
// archived whole under its key id and the new key lists it among its
// predecessors: its history stays readable, the client's revocation list
// keeps its revoked versions, and its index entries, which still name the
// old key id, make verify answer "revoked" for its secrets.

const storageArchivedKeyPrefix = "archive/keys/"

func archivedKeyStorageKey(keyID string) string { return storageArchivedKeyPrefix + keyID }

func (b *apikeysBackend) getArchivedKey(ctx context.Context, s logical.Storage, keyID string) (*record.Key, error) {
	return getJSON[record.Key](ctx, s, archivedKeyStorageKey(keyID), "archived key "+keyID)
}

// archiveRevokedKey stores old, the revoked key whose name next takes over,
// under its key id, and links it from next. It finishes old's last commit
// first: once next replaces the record, an unfinished commit of old could
// no longer be recognised as having happened. The archive is written before
// next is committed, so a crash in between leaves old in place and an
// archive copy that the next attempt writes again. Callers hold the key's
// lock.
func (b *apikeysBackend) archiveRevokedKey(ctx context.Context, s logical.Storage, old, next *record.Key) error {
	if err := b.finishInterruptedCommit(ctx, s, old); err != nil {
		return err
	}
	// Its retention pointer first (archive_retention.go): a pointer to
	// nothing is dropped, a record without one would be kept forever.
	if err := b.putRetentionPointer(ctx, s, retentionKindArchive, old.KeyID, b.clock.Now()); err != nil {
		return err
	}
	if err := putJSON(ctx, s, archivedKeyStorageKey(old.KeyID), "archived key", old); err != nil {
		return err
	}
	next.Predecessors = append(append([]string(nil), old.Predecessors...), old.KeyID)
	return nil
}

// predecessorKeys loads the archived predecessors of k, oldest first
// (one missing from the archive is skipped).
func (b *apikeysBackend) predecessorKeys(ctx context.Context, s logical.Storage, k *record.Key) ([]*record.Key, error) {
	var out []*record.Key
	for _, id := range k.Predecessors {
		old, err := b.getArchivedKey(ctx, s, id)
		if err != nil {
			return nil, err
		}
		if old != nil {
			out = append(out, old)
		}
	}
	return out, nil
}

// issueExpiry sets the expiry an issuance asks for (zero: none): never
// later than the role's key_lifetime allows.
func issueExpiry(role *record.Role, k *record.Key, at time.Time) error {
	if role.KeyLifetime > 0 && (at.IsZero() || at.After(k.CreatedAt.Add(role.KeyLifetime))) {
		return userErrorf("expires_at: role %q limits its keys' lifetime to %s (until %s); ask for an earlier expiry or omit it", role.Name, role.KeyLifetime, k.CreatedAt.Add(role.KeyLifetime).Format(time.RFC3339))
	}
	k.ExpiresAt = at
	return nil
}
