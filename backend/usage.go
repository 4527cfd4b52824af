package backend

import (
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"time"
)

// Usage tracking (SPEC §5 verify, §6 stale keys, §7). Verify records usage
// in memory only; flushUsage, run from the periodic func about once a
// minute, merges it into the key records (usage_flush.go). Readers (key
// reads, the inventory's unused_for filter, rotation's adoption check, the
// idle sweep) merge the stored values with what is not flushed yet. The
// buffer is bounded (usage_buffer.go); usageTrustworthy tells the idle
// sweep when what it lost could make an idle revocation wrong.

// maxRecentSources bounds the source addresses remembered per key.
const maxRecentSources = 8

// usageEntry is what verify buffered for one key since the last flush.
// It is kept small (times as unix nanoseconds, no maps): there is one per
// key verified since the last flush.
type usageEntry struct {
	client, name string
	lastUsed     int64 // unix ns of the last successful verify
	// versions holds the last successful verify per version; at most
	// three versions (active, previous, pending) verify at a time.
	versions [3]versionUse
	counts   [len(record.UsageOutcomes)]uint32
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
	a, ok := record.ParseIP(s)
	if !ok {
		return ""
	}
	return a.String()
}

// lastUsed returns when a key was last verified successfully: stored, or
// buffered (in full or spilled) on this node.
func (b *apikeysBackend) lastUsed(k *record.Key) time.Time {
	last := k.LastUsedAt
	ns, _ := b.cache.usage.lastUses(k.KeyID, 0)
	if t := fromNanos(ns); t.After(last) {
		last = t
	}
	return last
}

// versionLastVerified returns when a version of a key was last verified
// successfully on this mount (zero: never). Rotation uses it to decide
// whether a new version has been adopted.
func (b *apikeysBackend) versionLastVerified(k *record.Key, version int) time.Time {
	var last time.Time
	if v := k.Version(version); v != nil {
		last = v.LastVerifiedAt
	}
	_, ns := b.cache.usage.lastUses(k.KeyID, version)
	if t := fromNanos(ns); t.After(last) {
		last = t
	}
	return last
}

// usageTrustworthy reports whether the recorded usage of key k can justify
// revoking it as unused for idleTimeout at now. It cannot while a verify
// that the full usage buffer kept nowhere (not even as a last use, see
// usage_buffer.go) happened within idleTimeout: that verify may have been
// of k. Revocation is then deferred, never skipped for good: lost uses age
// out after idleTimeout. The idle sweep must check it before revoking.
func (b *apikeysBackend) usageTrustworthy(k *record.Key, now time.Time, idleTimeout time.Duration) bool {
	lost := b.cache.usage.lastLost()
	if lost.IsZero() || now.Sub(lost) >= idleTimeout {
		return true
	}
	b.warnIdleDeferred(k, lost, idleTimeout)
	return false
}

// usageSummary is the usage shown on key reads: stored plus buffered.
func (b *apikeysBackend) usageSummary(k *record.Key) map[string]interface{} {
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
				counts[record.UsageOutcomes[i]] += uint64(n)
			}
		}
		sources = mergeSources(e.sources, sources)
	})
	return map[string]interface{}{
		"verify_counts":  counts,
		"recent_sources": nonNil(sources),
	}
}
