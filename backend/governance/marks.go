package governance

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Per-key governance marks (storage "governance/marks/<key id>").
//
// Marks keep background alerts and notices to one per key and cause, and
// remember a key's first alert not yet followed by a revocation
// (time-to-revoke).
// Kept as maps inside the single state entry, they would grow with the
// number of flagged keys until the entry passes the storage's maximum
// entry size (1 MiB with Raft), and every tick would fail from then on.
//
// Each key's marks are an entry of their own, at most a few hundred bytes
// whatever the number of keys. Why per key rather than a fixed number of
// hash shards:
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

// MarksPrefix is the storage prefix of the per-key marks.
const MarksPrefix = "governance/marks/"

// MarksKey is the storage entry of a key's marks.
func MarksKey(keyID string) string { return MarksPrefix + keyID }

// Marks are one key's governance marks; the zero value is "none" and is
// not stored.
type Marks struct {
	// Review is when the key was flagged for review: it is alerted once
	// until used again.
	Review time.Time `json:"review,omitzero"`
	// Overdue is the rotation due time the key was alerted for: one alert
	// per due time.
	Overdue time.Time `json:"overdue,omitzero"`
	// Alerted is the key's first alert not yet followed by a revocation;
	// the revocation turns it into a time-to-revoke sample.
	Alerted time.Time `json:"alerted,omitzero"`
	// NoticeDue and NoticeLead are the rotation due time the key's owner
	// was last given advance notice of, and the smallest lead time
	// notified for it: one notice per due time and lead.
	NoticeDue  time.Time     `json:"notice_due,omitzero"`
	NoticeLead time.Duration `json:"notice_lead,omitzero"`
	// Expiring is the expiry time the key was notified of: one notice
	// per expiry, so an extended expiry notifies again.
	Expiring time.Time `json:"expiring,omitzero"`
}

func (m Marks) empty() bool {
	return m.Review.IsZero() && m.Overdue.IsZero() && m.Alerted.IsZero() &&
		m.NoticeDue.IsZero() && m.NoticeLead == 0 && m.Expiring.IsZero()
}

// equal compares instants, not representations: a time read back from
// storage has lost its monotonic reading and may have another location.
func (m Marks) equal(o Marks) bool {
	return m.Review.Equal(o.Review) && m.Overdue.Equal(o.Overdue) && m.Alerted.Equal(o.Alerted) &&
		m.NoticeDue.Equal(o.NoticeDue) && m.NoticeLead == o.NoticeLead && m.Expiring.Equal(o.Expiring)
}

// Age drops the alerted mark once no revocation followed it for
// OpenAlertMaxAge: the alert leaves time-to-revoke tracking.
func (m *Marks) Age(now time.Time) {
	if !m.Alerted.IsZero() && now.Sub(m.Alerted) > OpenAlertMaxAge {
		m.Alerted = time.Time{}
	}
}

// Settle clears the review and overdue marks whose cause is gone, so the
// key alerts again if the cause comes back (used, then stale again;
// rotated, then overdue again).
func (m *Marks) Settle(stale, overdue bool) {
	if !stale {
		m.Review = time.Time{}
	}
	if !overdue {
		m.Overdue = time.Time{}
	}
}

// SettleNotices clears the notice marks of a due time or expiry the key no
// longer has (rotated, expiry moved, or the key revoked or expired: zero),
// so a new due time or expiry is notified again from its first lead time.
func (m *Marks) SettleNotices(due, expires time.Time) {
	if !m.NoticeDue.Equal(due) {
		m.NoticeDue, m.NoticeLead = time.Time{}, 0
	}
	if !m.Expiring.Equal(expires) {
		m.Expiring = time.Time{}
	}
}

// MarksOf returns a key's marks (zero if none), read through the state's
// cache.
func (st *State) MarksOf(ctx context.Context, keyID string) (Marks, error) {
	return st.marks.get(ctx, keyID)
}

// SetMarks replaces a key's marks, to be written when the state is saved.
func (st *State) SetMarks(keyID string, m Marks) {
	st.marks.set(keyID, m)
}

// DropMarks deletes the marks of keys that are gone for good (purged), which
// the sweep would otherwise never visit again. It takes the state lock, so
// a tick never writes back a mark it loaded before the drop; the caller
// must hold no key lock (a tick takes key locks under it). failed is told
// of each mark left behind: a small orphan entry.
func (r *Runtime) DropMarks(ctx context.Context, s logical.Storage, keyIDs []string, failed func(keyID string, err error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range keyIDs {
		if err := s.Delete(ctx, MarksKey(id)); err != nil {
			failed(id, err)
		}
	}
}

// markSlot is a cached key's marks.
type markSlot struct {
	m Marks
	// stored: an entry exists in storage (as last read or written).
	stored bool
	dirty  bool
}

// markStore reads marks through a cache and writes them back only when
// flushed (by State.save, after the alerts they record were raised). A
// read-only user (Snapshot) never flushes, so it can fold the lifecycle log
// without writing. It lives for one load of the state; its size is the
// keys that state's user touched.
type markStore struct {
	s     logical.Storage
	slots map[string]*markSlot
}

func newMarkStore(s logical.Storage) *markStore {
	return &markStore{s: s, slots: map[string]*markSlot{}}
}

// get returns the marks of a key (zero if none).
func (ms *markStore) get(ctx context.Context, keyID string) (Marks, error) {
	if sl, ok := ms.slots[keyID]; ok {
		return sl.m, nil
	}
	entry, err := ms.s.Get(ctx, MarksKey(keyID))
	if err != nil {
		return Marks{}, fmt.Errorf("reading governance marks: %w", err)
	}
	sl := &markSlot{stored: entry != nil}
	if entry != nil {
		if err := entry.DecodeJSON(&sl.m); err != nil {
			return Marks{}, fmt.Errorf("decoding governance marks of %s: %w", keyID, err)
		}
	}
	ms.slots[keyID] = sl
	return sl.m, nil
}

// set replaces the marks of a key read with get, to be written by the next
// flush.
func (ms *markStore) set(keyID string, m Marks) {
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
			if err := ms.s.Delete(ctx, MarksKey(id)); err != nil {
				return fmt.Errorf("deleting governance marks: %w", err)
			}
		case !sl.m.empty():
			entry, err := logical.StorageEntryJSON(MarksKey(id), sl.m)
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
