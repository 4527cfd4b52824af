package backend

import (
	"context"
	"sort"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// De-provisioned clients (the inventory's tombstones) each have a pointer
// under "tombstones/", so a page of tombstones lists those and reads only
// their records instead of reading every client to find the few that are
// de-provisioned. The pointer is written before the client's status
// changes: a pointer whose client is not de-provisioned (a crash between
// the two writes) is skipped by the reader, while a de-provisioned client
// is never without one. Clients de-provisioned before pointers existed get
// theirs from a one-time backfill; until it ends, the tombstone page reads
// the client records as before.
const (
	storageTombstonePrefix   = "tombstones/"
	storageTombstoneBackfill = "tombstone_backfill"
	// tombstoneBackfillBudget bounds the client records one tick's step
	// reads.
	tombstoneBackfillBudget = 1000
)

type tombstonePointer struct {
	Client string `json:"client"`
}

func (b *apikeysBackend) putTombstonePointer(ctx context.Context, s logical.Storage, client string) error {
	return putJSON(ctx, s, storageTombstonePrefix+client, "tombstone pointer", tombstonePointer{Client: client})
}

func (b *apikeysBackend) tombstoneBackfill() backfill {
	return backfill{storageKey: storageTombstoneBackfill, what: "tombstone backfill", done: &b.tombstonesDone, step: b.tombstoneBackfillStep}
}

func (b *apikeysBackend) tombstoneBackfillTick(ctx context.Context, req *logical.Request) error {
	return b.tombstoneBackfill().tick(ctx, req.Storage, b.logger)
}

// tombstoneBackfillStep writes the pointers of the de-provisioned clients
// among the next budget clients after cursor.
func (b *apikeysBackend) tombstoneBackfillStep(ctx context.Context, s logical.Storage, cursor string) (string, int, error) {
	return b.tombstoneBackfillStepWithin(ctx, s, cursor, tombstoneBackfillBudget)
}

func (b *apikeysBackend) tombstoneBackfillStepWithin(ctx context.Context, s logical.Storage, cursor string, budget int) (string, int, error) {
	listed, err := s.List(ctx, storageClientPrefix)
	if err != nil {
		return "", 0, err
	}
	names := trimSorted(listed)
	start := sort.Search(len(names), func(i int) bool { return names[i] > cursor })
	written := 0
	for i, n := range names[start:] {
		if i == budget {
			return names[start+i-1], written, nil
		}
		c, err := b.getClient(ctx, s, n)
		if err != nil {
			return "", written, err
		}
		if c != nil && c.Status == record.ClientDeprovisioned {
			if err := b.putTombstonePointer(ctx, s, n); err != nil {
				return "", written, err
			}
			written++
		}
	}
	return "", written, nil
}

// tombstoneCandidates lists the clients a tombstone page reads: the
// pointers once every de-provisioned client has one, else every client.
func (b *apikeysBackend) tombstoneCandidates(ctx context.Context, s logical.Storage) ([]string, error) {
	prefix := storageClientPrefix
	done, err := b.tombstoneBackfill().finished(ctx, s)
	if err != nil {
		return nil, err
	}
	if done {
		prefix = storageTombstonePrefix
	}
	listed, err := s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return trimSorted(listed), nil
}
