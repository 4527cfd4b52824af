package backend

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Retention of archived keys (key_reissue.go). A revoked key whose name is
// re-issued is archived whole under its key id; its index entries keep
// naming it, so verify answers "revoked" for its secrets, and the client's
// revocation list keeps its revoked versions. Names re-issued after every
// incident would keep all of that forever, so an archived key is deleted
// the config's archived_key_retention (default 90 days) after the re-issue:
// its record, the index entries that still name it, its key-id pointer and
// its governance marks. Verify then answers not_found for its secrets
// (refused all the same), it leaves the revocation list, and the live key
// keeps its id among its predecessors. Its history stays in the lifecycle
// log (key.issued, key.revoked, key.reissued, and the archived_keys.pruned
// entry naming it, written before anything is deleted).
//
// An archived key is found through its retention pointer
// (retention_index.go), written in today's bucket just before the archive
// record. Deletes go index entries first, the record last, as a leased
// key's purge does: a crash in between leaves a record the next pass finds
// again through its pointer, never an index entry without its record.

const retentionKindArchive = "archived_keys"

func (b *apikeysBackend) archiveRetention() retentionKind {
	return retentionKind{
		name:         retentionKindArchive,
		recordPrefix: storageArchivedKeyPrefix,
		setting:      "archived_key_retention",
		retention:    func(c *record.Config) time.Duration { return c.ArchivedKeyRetention },
		examine:      b.pruneArchivedKeys,
	}
}

// pruneArchivedKeys deletes the archived keys of ids that are past their
// retention. The pointer of an archived key is written on the day of the
// re-issue, so a pass reaches it only once the re-issue (and the
// revocation before it) is at least the retention old; the check against
// the revocation time guards a clock that went back.
func (b *apikeysBackend) pruneArchivedKeys(ctx context.Context, s logical.Storage, ids []string, now time.Time, retention time.Duration) ([]string, map[string]time.Time, error) {
	var gone []string
	var due []*record.Key
	kept := map[string]time.Time{}
	for _, id := range ids {
		k, err := b.getArchivedKey(ctx, s, id)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case k == nil:
			gone = append(gone, id)
		case now.Before(archivedAt(k).Add(retention)):
			kept[id] = archivedAt(k)
		default:
			due = append(due, k)
		}
	}
	for len(due) > 0 {
		batch := due[:min(len(due), retentionEventMax)]
		due = due[len(batch):]
		batchIDs := make([]string, len(batch))
		for i, k := range batch {
			batchIDs[i] = k.KeyID
		}
		ev := systemEvent(eventlog.ArchivedKeysPruned)
		ev.Time = now
		ev.Details = map[string]string{
			"count":                  strconv.Itoa(len(batch)),
			"key_ids":                strings.Join(batchIDs, ","),
			"archived_key_retention": retention.String(),
		}
		// Nothing is deleted unless the log says so.
		if err := b.log.Append(ctx, s, ev); err != nil {
			return gone, kept, err
		}
		var deleted []string
		for _, k := range batch {
			if err := b.deleteArchivedKey(ctx, s, k); err != nil {
				b.dropGovMarks(ctx, s, deleted)
				return gone, kept, fmt.Errorf("archived key %s: %w", k.KeyID, err)
			}
			deleted = append(deleted, k.KeyID)
			gone = append(gone, k.KeyID)
		}
		b.dropGovMarks(ctx, s, deleted)
	}
	return gone, kept, nil
}

// archivedAt is when an archived key's retention counts from at the
// earliest: its revocation (the re-issue came after it).
func archivedAt(k *record.Key) time.Time {
	if !k.RevokedAt.IsZero() {
		return k.RevokedAt
	}
	return k.CreatedAt
}

// deleteArchivedKey deletes one archived key under its name's lock: the
// index entries that still name it, its key-id pointer unless it resolves
// to a stored key of that id, then the record.
func (b *apikeysBackend) deleteArchivedKey(ctx context.Context, s logical.Storage, k *record.Key) error {
	defer b.locks.lockKey(k.Client, k.Name)()
	for _, v := range k.Versions {
		if v.HMAC == "" {
			continue
		}
		ie, err := b.getIndex(ctx, s, v.HMAC)
		if err != nil {
			return err
		}
		// Only an entry naming this archived key: an index entry is never
		// shared, but a prune must never remove another key's.
		if ie != nil && ie.KeyID == k.KeyID {
			if err := s.Delete(ctx, indexStorageKey(v.HMAC)); err != nil {
				return fmt.Errorf("deleting index entry: %w", err)
			}
		}
		b.cache.invalidate(indexStorageKey(v.HMAC))
	}
	live, _, err := b.keyByID(ctx, s, k.KeyID)
	if err != nil {
		return err
	}
	if live == nil {
		if err := s.Delete(ctx, storageKeyIDPrefix+k.KeyID); err != nil {
			return fmt.Errorf("deleting key id pointer: %w", err)
		}
	}
	if err := s.Delete(ctx, archivedKeyStorageKey(k.KeyID)); err != nil {
		return fmt.Errorf("deleting archived record: %w", err)
	}
	return nil
}
