package backend

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Usage tracking (SPEC §5 verify, §6 stale keys, §7). Verify records usage
// in memory only; flushUsage, run from the periodic func about once a
// minute, merges it into the key records in batches. Readers (key reads,
// the inventory's unused_for filter, rotation's adoption check) merge the
// stored values with what is not flushed yet.

// outcomeActive counts successful verifies in KeyUsage.Counts.
const outcomeActive = "active"

// usageOutcomes lists every outcome counted per key, in a fixed order.
var usageOutcomes = [...]string{
	outcomeActive, codeNotFound, codeMalformed, codeExpired, codeRevoked, codeLocked,
	codeForbiddenScope, codeForbiddenAudience, codeForbiddenEnvironment, codeForbiddenIP, codeRateLimited,
}

func outcomeIndex(code string) int {
	for i, c := range usageOutcomes {
		if c == code {
			return i
		}
	}
	return -1
}

// maxRecentSources bounds the source addresses remembered per key.
const maxRecentSources = 8

// maxUsageEntries bounds the keys with buffered usage (a node that cannot
// flush, e.g. a performance standby, stops tracking new keys beyond it).
const maxUsageEntries = 200000

// usageFlushBatch bounds how many keys one flush writes; the rest stays
// buffered for the next tick so a flush never stalls the periodic func.
const usageFlushBatch = 5000

// KeyUsage is a key's verify usage as stored on its record.
type KeyUsage struct {
	// Counts of verify outcomes ("active" for success, else the code).
	Counts map[string]uint64 `json:"counts,omitempty"`
	// RecentSources are the latest distinct client_ip values of successful
	// verifies, most recent first.
	RecentSources []string `json:"recent_sources,omitempty"`
}

// usageEntry is what verify buffered for one key since the last flush.
// It is kept small (times as unix nanoseconds, no maps): there is one per
// key verified since the last flush.
type usageEntry struct {
	client, name string
	lastUsed     int64 // unix ns of the last successful verify
	// versions holds the last successful verify per version; at most
	// three versions (active, previous, pending) verify at a time.
	versions [3]versionUse
	counts   [len(usageOutcomes)]uint32
	seq      uint32   // bumped on every record
	sources  []string // most recent first
}

type versionUse struct {
	version int32
	at      int64 // unix ns
}

// lastVerified returns when version was last verified (0: not since the
// last flush).
func (e *usageEntry) lastVerified(version int) int64 {
	for _, v := range e.versions {
		if v.at != 0 && int(v.version) == version {
			return v.at
		}
	}
	return 0
}

// verified notes a successful verify of version at ns, replacing the
// least recent slot when all are taken.
func (e *usageEntry) verified(version int, ns int64) {
	slot := 0
	for i, v := range e.versions {
		if v.at != 0 && int(v.version) == version {
			slot = i
			break
		}
		if v.at < e.versions[slot].at {
			slot = i
		}
	}
	if ns > e.versions[slot].at || int(e.versions[slot].version) != version {
		e.versions[slot] = versionUse{version: int32(version), at: ns}
	}
}

func fromNanos(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

type usageTracker struct {
	mu      sync.Mutex
	entries map[string]*usageEntry // by key_id
}

func newUsageTracker() *usageTracker {
	return &usageTracker{entries: make(map[string]*usageEntry)}
}

// record buffers one verify outcome of an identified key.
func (u *usageTracker) record(k *Key, version int, code string, source string, now time.Time) {
	idx := outcomeIndex(code)
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.entries[k.KeyID]
	if e == nil {
		if len(u.entries) >= maxUsageEntries {
			return
		}
		e = &usageEntry{client: k.Client, name: k.Name}
		u.entries[k.KeyID] = e
	}
	e.seq++
	if idx >= 0 {
		e.counts[idx]++
	}
	if code != outcomeActive {
		return
	}
	ns := now.UnixNano()
	if ns > e.lastUsed {
		e.lastUsed = ns
	}
	e.verified(version, ns)
	if source != "" {
		e.sources = pushSource(e.sources, source)
	}
}

// pushSource puts src first in list, deduplicated and bounded.
func pushSource(list []string, src string) []string {
	if len(list) > 0 && list[0] == src {
		return list
	}
	out := make([]string, 0, maxRecentSources)
	out = append(out, src)
	for _, s := range list {
		if s != src && len(out) < maxRecentSources {
			out = append(out, s)
		}
	}
	return out
}

// mergeSources puts the newer list in front of the older one.
func mergeSources(newer, older []string) []string {
	out := append([]string(nil), older...)
	for i := len(newer) - 1; i >= 0; i-- {
		out = pushSource(out, newer[i])
	}
	return out
}

// canonicalSource returns the canonical form of a client_ip, or "" when it
// is not an IP address (then it is not remembered).
func canonicalSource(s string) string {
	a, ok := parseIP(s)
	if !ok {
		return ""
	}
	return a.String()
}

// snapshot is a copy of an entry taken for a flush.
type usageSnapshot struct {
	keyID string
	entry usageEntry
}

func (u *usageTracker) snapshots(max int) []usageSnapshot {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]usageSnapshot, 0, min(max, len(u.entries)))
	for id, e := range u.entries {
		if len(out) >= max {
			break
		}
		cp := *e
		cp.sources = append([]string(nil), e.sources...)
		out = append(out, usageSnapshot{keyID: id, entry: cp})
	}
	return out
}

// flushed forgets what a snapshot persisted. An entry that changed since
// keeps its times (not older than what was stored) and the counts that
// came in after the snapshot.
func (u *usageTracker) flushed(sn usageSnapshot) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.entries[sn.keyID]
	if e == nil {
		return
	}
	if e.seq == sn.entry.seq {
		delete(u.entries, sn.keyID)
		return
	}
	for i := range e.counts {
		e.counts[i] -= sn.entry.counts[i]
	}
}

func (u *usageTracker) get(keyID string, fn func(e *usageEntry)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if e := u.entries[keyID]; e != nil {
		fn(e)
	}
}

// lastUsed returns when a key was last verified successfully.
func (b *apikeysBackend) lastUsed(k *Key) time.Time {
	last := k.LastUsedAt
	b.cache.usage.get(k.KeyID, func(e *usageEntry) {
		if t := fromNanos(e.lastUsed); t.After(last) {
			last = t
		}
	})
	return last
}

// versionLastVerified returns when a version of a key was last verified
// successfully on this mount (zero: never). Rotation uses it to decide
// whether a new version has been adopted.
func (b *apikeysBackend) versionLastVerified(k *Key, version int) time.Time {
	var last time.Time
	if v := k.version(version); v != nil {
		last = v.LastVerifiedAt
	}
	b.cache.usage.get(k.KeyID, func(e *usageEntry) {
		if t := fromNanos(e.lastVerified(version)); t.After(last) {
			last = t
		}
	})
	return last
}

// usageSummary is the usage shown on key reads: stored plus buffered.
func (b *apikeysBackend) usageSummary(k *Key) map[string]interface{} {
	counts := map[string]uint64{}
	var sources []string
	if k.Usage != nil {
		for c, n := range k.Usage.Counts {
			counts[c] = n
		}
		sources = k.Usage.RecentSources
	}
	b.cache.usage.get(k.KeyID, func(e *usageEntry) {
		for i, n := range e.counts {
			if n > 0 {
				counts[usageOutcomes[i]] += uint64(n)
			}
		}
		sources = mergeSources(e.sources, sources)
	})
	return map[string]interface{}{
		"verify_counts":  counts,
		"recent_sources": nonNil(sources),
	}
}

// onKeyRevoked runs after versions of a key were revoked, under its lock.
// Buffered usage stays (it is history); rate-limit state is no longer needed.
func (b *apikeysBackend) onKeyRevoked(k *Key) {
	if k.Revoked {
		b.cache.limits.forget(k.KeyID)
	}
}

// flushUsage writes buffered usage to storage; called from the periodic func.
func (b *apikeysBackend) flushUsage(ctx context.Context, req *logical.Request) error {
	b.cache.limits.prune(b.clock.Now())
	var errs []error
	for _, sn := range b.cache.usage.snapshots(usageFlushBatch) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := b.persistUsage(ctx, req.Storage, sn); err != nil {
			errs = append(errs, err)
			continue
		}
		b.cache.usage.flushed(sn)
	}
	return errors.Join(errs...)
}

// persistUsage merges one snapshot into its key record under the locks.
func (b *apikeysBackend) persistUsage(ctx context.Context, s logical.Storage, sn usageSnapshot) error {
	e := &sn.entry
	defer b.lockKey(e.client, e.name)()
	k, err := b.getKey(ctx, s, e.client, e.name)
	if err != nil {
		return err
	}
	if k == nil || k.KeyID != sn.keyID {
		return nil // the key is gone: nothing to keep the usage on
	}
	if t := fromNanos(e.lastUsed); t.After(k.LastUsedAt) {
		k.LastUsedAt = t
	}
	for _, vu := range e.versions {
		if v := k.version(int(vu.version)); v != nil && vu.at != 0 && fromNanos(vu.at).After(v.LastVerifiedAt) {
			v.LastVerifiedAt = fromNanos(vu.at)
		}
	}
	if k.Usage == nil {
		k.Usage = &KeyUsage{}
	}
	if k.Usage.Counts == nil {
		k.Usage.Counts = map[string]uint64{}
	}
	for i, n := range e.counts {
		if n > 0 {
			k.Usage.Counts[usageOutcomes[i]] += uint64(n)
		}
	}
	k.Usage.RecentSources = mergeSources(e.sources, k.Usage.RecentSources)
	return b.putKey(ctx, s, k)
}
