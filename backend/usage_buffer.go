package backend

import (
	"sync"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// The in-memory usage buffer that verify records into (usage.go) and
// flushUsage drains (usage_flush.go).
//
// Memory is bounded, so under enough load some records cannot be kept.
// What matters most is a key's last use: the idle sweep revokes keys whose
// last use is older than their role's idle_timeout, so a lost use could
// revoke a key that is in use. The buffer therefore degrades in steps:
//
//  1. entries: full usage (counts, sources, per-version times) of up to
//     maxUsageEntries keys;
//  2. spill: when entries is full, only the last successful verify (time
//     and version) of up to maxSpillEntries more keys, small enough to hold
//     many; failed outcomes of those keys are only counted as uncounted;
//  3. beyond that nothing per key: lostAt keeps the time of the latest
//     successful verify that was kept nowhere, and usageTrustworthy refuses
//     idle revocations that a use at that time could make wrong.
//
// A flush drains both tiers oldest first (queue), so the buffer only holds
// what was verified since the previous flush (or what storage refused).

const (
	// maxUsageEntries bounds the keys with full buffered usage: an entry
	// takes about 250 bytes (up to about 600 with eight source addresses),
	// so 50 to 120 MB when full; with flushes keeping up it holds only
	// the keys verified since the last one.
	maxUsageEntries = 200000
	// maxSpillEntries bounds the keys whose last use is kept after entries
	// filled up: about 120 bytes each (strings are shared with the key
	// cache), about 8 MB when full.
	maxSpillEntries = 65536
)

// spillUse is the last successful verify of a key that found entries full.
type spillUse struct {
	client, name string
	version      int32
	at           int64 // unix ns
}

type usageTracker struct {
	mu sync.Mutex
	// entries holds the full usage of keys by key_id; spill the last use
	// of keys that did not fit in entries. A key is in at most one of them.
	entries map[string]*usageEntry
	spill   map[string]spillUse
	// queue orders the key ids with buffered usage for flushing, oldest
	// first. Invariant: a key id in entries or spill is either in queue
	// exactly once or taken by a flush (snapshots) that has not yet called
	// flushed or unflushed for it.
	queue idQueue

	// Losses since the last flush reported them (takeLosses).
	uncounted uint64 // outcomes counted in no key's usage
	spilled   uint64 // successful verifies kept only in spill
	lost      uint64 // successful verifies kept nowhere
	// lostAt is the latest successful verify kept nowhere (unix ns of
	// domain time); never reset, it only ages out (usageTrustworthy).
	lostAt int64
	// deferWarned: usageTrustworthy warned since the last flush.
	deferWarned bool

	// capacity and spillCapacity are maxUsageEntries and maxSpillEntries,
	// flushLimits the flush's time budget, except in tests.
	capacity, spillCapacity int
	flushLimits             usageFlushLimits
}

func newUsageTracker() *usageTracker {
	return &usageTracker{
		entries:       make(map[string]*usageEntry),
		spill:         make(map[string]spillUse),
		capacity:      maxUsageEntries,
		spillCapacity: maxSpillEntries,
		flushLimits:   usageFlushLimits{stopwatch: time.Now, budget: usageFlushBudget},
	}
}

// record buffers one verify outcome of an identified key. It is on the
// verify hot path: O(1) under the tracker's mutex, no allocation once the
// key has an entry.
func (u *usageTracker) record(k *record.Key, version int, code string, source string, now time.Time) {
	idx := record.OutcomeIndex(code)
	ns := now.UnixNano()
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.entries[k.KeyID]
	if e == nil {
		if len(u.entries) >= u.capacity {
			u.overflowLocked(k, version, code, ns)
			return
		}
		e = &usageEntry{client: k.Client, name: k.Name}
		if sp, ok := u.spill[k.KeyID]; ok {
			// There is room again: the entry takes over the spilled last
			// use. The key id is already queued (or being flushed).
			delete(u.spill, k.KeyID)
			e.lastUsed = sp.at
			e.verified(int(sp.version), sp.at)
		} else {
			u.queue.push(k.KeyID)
		}
		u.entries[k.KeyID] = e
	}
	e.seq++
	if idx >= 0 {
		e.counts[idx]++
	}
	if code != record.OutcomeActive {
		return
	}
	if ns > e.lastUsed {
		e.lastUsed = ns
	}
	e.verified(version, ns)
	if source != "" {
		e.sources = pushSource(e.sources, source)
	}
}

// overflowLocked handles a record of a key without an entry while entries
// is full: a successful verify keeps its time in spill, or else in lostAt.
func (u *usageTracker) overflowLocked(k *record.Key, version int, code string, ns int64) {
	u.uncounted++
	if code != record.OutcomeActive {
		return // only successful verifies are uses
	}
	sp, ok := u.spill[k.KeyID]
	if !ok && len(u.spill) >= u.spillCapacity {
		u.lost++
		if ns > u.lostAt {
			u.lostAt = ns
		}
		return
	}
	if !ok {
		u.queue.push(k.KeyID)
	}
	u.spilled++
	if ns >= sp.at {
		u.spill[k.KeyID] = spillUse{client: k.Client, name: k.Name, version: int32(version), at: ns}
	}
}

// usageSnapshot is a copy of a key's buffered usage taken for a flush.
type usageSnapshot struct {
	keyID string
	entry usageEntry
	// spilled: taken from spill, so only lastUsed and one version are set.
	spilled bool
}

// backlog is how many keys have buffered usage waiting for a flush.
func (u *usageTracker) backlog() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.queue.len()
}

// snapshots takes up to max keys off the front of the queue and copies
// their usage. The caller must hand every snapshot back through flushed
// (persisted) or unflushed (not persisted).
func (u *usageTracker) snapshots(max int) []usageSnapshot {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]usageSnapshot, 0, min(max, u.queue.len()))
	for len(out) < max {
		id, ok := u.queue.pop()
		if !ok {
			break
		}
		if e := u.entries[id]; e != nil {
			cp := *e
			cp.sources = append([]string(nil), e.sources...)
			out = append(out, usageSnapshot{keyID: id, entry: cp})
		} else if sp, ok := u.spill[id]; ok {
			cp := usageEntry{client: sp.client, name: sp.name, lastUsed: sp.at}
			cp.verified(int(sp.version), sp.at)
			out = append(out, usageSnapshot{keyID: id, entry: cp, spilled: true})
		}
	}
	return out
}

// flushed forgets what a snapshot persisted. An entry unchanged since the
// snapshot is dropped (the key gets a new one on its next verify); one
// that changed keeps its times (not older than what was stored) and the
// counts that came in after the snapshot, and is queued again.
func (u *usageTracker) flushed(sn usageSnapshot) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if sn.spilled {
		if sp, ok := u.spill[sn.keyID]; ok && sp.at == sn.entry.lastUsed {
			delete(u.spill, sn.keyID)
		}
	} else if e := u.entries[sn.keyID]; e != nil {
		if e.seq == sn.entry.seq {
			delete(u.entries, sn.keyID)
		} else {
			for i := range e.counts {
				e.counts[i] -= sn.entry.counts[i]
			}
		}
	}
	u.requeueLocked(sn.keyID)
}

// unflushed puts back snapshots that were not persisted; they are flushed
// again by a later flush.
func (u *usageTracker) unflushed(sns ...usageSnapshot) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, sn := range sns {
		u.requeueLocked(sn.keyID)
	}
}

// requeueLocked queues a key id taken by a flush if usage is still
// buffered for it.
func (u *usageTracker) requeueLocked(id string) {
	_, inSpill := u.spill[id]
	if u.entries[id] != nil || inSpill {
		u.queue.push(id)
	}
}

// lastUses returns the buffered last successful verify of a key and of one
// of its versions (unix ns, 0: none buffered).
func (u *usageTracker) lastUses(keyID string, version int) (key, ofVersion int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if e := u.entries[keyID]; e != nil {
		return e.lastUsed, e.lastVerified(version)
	}
	if sp, ok := u.spill[keyID]; ok {
		if int(sp.version) == version {
			ofVersion = sp.at
		}
		return sp.at, ofVersion
	}
	return 0, 0
}

func (u *usageTracker) get(keyID string, fn func(e *usageEntry)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if e := u.entries[keyID]; e != nil {
		fn(e)
	}
}

// usageLosses are the records the buffer could not keep in full since the
// previous report.
type usageLosses struct {
	uncounted, spilled, lost uint64
	lostAt                   time.Time // latest use kept nowhere, ever
	backlog, spillLen        int
}

// takeLosses returns and resets the loss counters.
func (u *usageTracker) takeLosses() usageLosses {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := usageLosses{uncounted: u.uncounted, spilled: u.spilled, lost: u.lost, lostAt: fromNanos(u.lostAt),
		backlog: u.queue.len(), spillLen: len(u.spill)}
	u.uncounted, u.spilled, u.lost = 0, 0, 0
	return l
}

// lastLost is the latest successful verify that was kept nowhere (zero:
// none since this node started).
func (u *usageTracker) lastLost() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return fromNanos(u.lostAt)
}

// idQueue is a FIFO of key ids: O(1) amortised push and pop, and its
// backing array shrinks back when drained.
type idQueue struct {
	items []string
	head  int
}

func (q *idQueue) len() int { return len(q.items) - q.head }

func (q *idQueue) push(id string) { q.items = append(q.items, id) }

func (q *idQueue) pop() (string, bool) {
	if q.head >= len(q.items) {
		return "", false
	}
	id := q.items[q.head]
	q.items[q.head] = ""
	q.head++
	switch {
	case q.head == len(q.items):
		// Drained: start over, releasing a large array.
		if cap(q.items) > 1024 {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
		q.head = 0
	case q.head > 1024 && q.head*2 >= len(q.items):
		// Half consumed: move the rest to the front so the array does not
		// grow without bound while the queue never drains.
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items = q.items[:n]
		q.head = 0
	}
	return id, true
}
