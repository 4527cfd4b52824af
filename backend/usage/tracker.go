package usage

import (
	"sync"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/go-hclog"
)

const (
	// MaxEntries bounds the keys with full buffered usage: an entry takes
	// about 250 bytes (up to about 600 with eight source addresses), so 50
	// to 120 MB when full; with flushes keeping up it holds only the keys
	// verified since the last one.
	MaxEntries = 200000
	// MaxSpill bounds the keys whose last use is kept after entries filled
	// up: about 120 bytes each (strings are shared with the key cache),
	// about 8 MB when full.
	MaxSpill = 65536
)

// spillUse is the last successful verify of a key that found entries full.
type spillUse struct {
	client, name string
	version      int32
	at           int64 // unix ns
}

// Tracker is a mount's usage buffer on this node: verify records into it,
// Flush drains it into the key records, and readers merge it with what the
// records store. All its state is guarded by mu.
type Tracker struct {
	mu sync.Mutex
	// entries holds the full usage of keys by key_id; spill the last use
	// of keys that did not fit in entries. A key is in at most one of them.
	entries map[string]*entry
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
	// domain time); never reset, it only ages out (Trustworthy).
	lostAt int64
	// deferWarned: Trustworthy warned since the last flush.
	deferWarned bool

	// capacity and spillCapacity are MaxEntries and MaxSpill, flushLimits
	// the flush's time budget, except in tests.
	capacity, spillCapacity int
	flushLimits             flushLimits

	// log receives the warnings about losses, deferred idle revocations
	// and flushes cut short.
	log hclog.Logger
}

// NewTracker returns an empty tracker with the default bounds, logging
// nowhere until SetLogger.
func NewTracker() *Tracker {
	return &Tracker{
		entries:       make(map[string]*entry),
		spill:         make(map[string]spillUse),
		capacity:      MaxEntries,
		spillCapacity: MaxSpill,
		flushLimits:   flushLimits{stopwatch: time.Now, budget: flushBudget},
		log:           hclog.NewNullLogger(),
	}
}

// SetLogger sets where the tracker warns (the mount's logger).
func (u *Tracker) SetLogger(l hclog.Logger) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.log = l
}

func (u *Tracker) logger() hclog.Logger {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.log
}

// SetCapacity replaces MaxEntries and MaxSpill, so tests can fill the
// buffer with a few keys. Keys already buffered stay.
func (u *Tracker) SetCapacity(entries, spill int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.capacity, u.spillCapacity = entries, spill
}

// Record buffers one verify outcome of an identified key; code is
// record.OutcomeActive for a successful verify, source its canonical
// client address or "". It is on the verify hot path: O(1) under the
// tracker's mutex, no allocation once the key has an entry.
func (u *Tracker) Record(k *record.Key, version int, code string, source string, now time.Time) {
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
		e = &entry{client: k.Client, name: k.Name}
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
func (u *Tracker) overflowLocked(k *record.Key, version int, code string, ns int64) {
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

// Backlog is how many keys have buffered usage waiting for a flush.
func (u *Tracker) Backlog() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.queue.len()
}

// Buffered tells how many keys have full usage buffered, how many only a
// spilled last use, and how many are queued for a flush. With no flush
// running, every buffered key is queued once.
func (u *Tracker) Buffered() (entries, spilled, queued int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.entries), len(u.spill), u.queue.len()
}
