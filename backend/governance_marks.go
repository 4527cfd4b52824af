package backend

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Per-key governance marks (storage "governance/marks/<key id>").
//
// Marks keep background alerts to one per key and cause, and remember a
// key's first alert not yet followed by a revocation (time-to-revoke).
// They used to be maps inside the single "governance/state" entry, which
// grows with the number of flagged keys until it passes the storage's
// maximum entry size (1 MiB with Raft) and every tick fails from then on.
//
// Each key's marks are now an entry of their own, at most a few hundred
// bytes whatever the number of keys. Why per key rather than a fixed number
// of hash shards:
//   - the sweep visits keys in storage order (client, name), which no hash of
//     the key id follows, so a batch of a few thousand keys would touch
//     nearly every shard: each tick would read (and in an alert storm
//     rewrite) all the marks, the very O(all keys) cost the incremental sweep
//     removes; per key, a tick reads one small entry per key it visits;
//   - a shard's size still grows with the number of keys, so a fixed shard
//     count only moves the limit; a per-key entry cannot grow;
//   - a mark changes only when an alert is raised (which already writes the
//     alert and a log entry), when a key is used or rotated again, is
//     revoked, or its alert ages out of time-to-revoke tracking: one small
//     write each, never a rewrite of other keys' marks.
//
// The cost is one extra read per visited key, bounded by the sweep batch.
const storageGovMarksPrefix = "governance/marks/"

func govMarksKey(keyID string) string { return storageGovMarksPrefix + keyID }

// keyMarks are one key's governance marks; the zero value is "none" and is
// not stored.
type keyMarks struct {
	// Review is when the key was flagged for review: it is alerted once
	// until used again.
	Review time.Time `json:"review,omitzero"`
	// Overdue is the rotation due time the key was alerted for: one alert
	// per due time.
	Overdue time.Time `json:"overdue,omitzero"`
	// Alerted is the key's first alert not yet followed by a revocation;
	// the revocation turns it into a time-to-revoke sample.
	Alerted time.Time `json:"alerted,omitzero"`
}

func (m keyMarks) empty() bool {
	return m.Review.IsZero() && m.Overdue.IsZero() && m.Alerted.IsZero()
}

// equal compares instants, not representations: a time read back from
// storage has lost its monotonic reading and may have another location.
func (m keyMarks) equal(o keyMarks) bool {
	return m.Review.Equal(o.Review) && m.Overdue.Equal(o.Overdue) && m.Alerted.Equal(o.Alerted)
}

// markSlot is a cached key's marks.
type markSlot struct {
	m keyMarks
	// stored: an entry exists in storage (as last read or written).
	stored bool
	dirty  bool
}

// markStore reads marks through a cache and writes them back only when
// flushed (by saveGovState, after the alerts they record were raised). A
// read-only user (metrics) never flushes, so it can fold the lifecycle log
// without writing. It lives for one load of the governance state; its size
// is the keys that state's user touched.
type markStore struct {
	s     logical.Storage
	slots map[string]*markSlot
}

func newMarkStore(s logical.Storage) *markStore {
	return &markStore{s: s, slots: map[string]*markSlot{}}
}

// get returns the marks of a key (zero if none).
func (ms *markStore) get(ctx context.Context, keyID string) (keyMarks, error) {
	if sl, ok := ms.slots[keyID]; ok {
		return sl.m, nil
	}
	entry, err := ms.s.Get(ctx, govMarksKey(keyID))
	if err != nil {
		return keyMarks{}, fmt.Errorf("reading governance marks: %w", err)
	}
	sl := &markSlot{stored: entry != nil}
	if entry != nil {
		if err := entry.DecodeJSON(&sl.m); err != nil {
			return keyMarks{}, fmt.Errorf("decoding governance marks of %s: %w", keyID, err)
		}
	}
	ms.slots[keyID] = sl
	return sl.m, nil
}

// set replaces the marks of a key read with get, to be written by the next
// flush.
func (ms *markStore) set(keyID string, m keyMarks) {
	sl, ok := ms.slots[keyID]
	if !ok {
		// Not read first: whether an entry exists is unknown, so an
		// empty value is written as a delete, which is harmless if none.
		sl = &markSlot{stored: true}
		ms.slots[keyID] = sl
	}
	if sl.m.equal(m) {
		return
	}
	sl.m, sl.dirty = m, true
}

// dirty reports whether a flush has anything to write.
func (ms *markStore) dirty() bool {
	for _, sl := range ms.slots {
		if sl.dirty {
			return true
		}
	}
	return false
}

// flush writes the changed marks: empty marks are deleted, so a key
// without marks costs no storage. Keys are written in order so that a
// failed flush leaves a predictable prefix done (and the rest still dirty
// for a retry with the same store).
func (ms *markStore) flush(ctx context.Context) error {
	var ids []string
	for id, sl := range ms.slots {
		if sl.dirty {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		sl := ms.slots[id]
		switch {
		case sl.m.empty() && sl.stored:
			if err := ms.s.Delete(ctx, govMarksKey(id)); err != nil {
				return fmt.Errorf("deleting governance marks: %w", err)
			}
		case !sl.m.empty():
			entry, err := logical.StorageEntryJSON(govMarksKey(id), sl.m)
			if err != nil {
				return err
			}
			if err := ms.s.Put(ctx, entry); err != nil {
				return fmt.Errorf("storing governance marks: %w", err)
			}
		}
		sl.stored, sl.dirty = !sl.m.empty(), false
	}
	return nil
}
