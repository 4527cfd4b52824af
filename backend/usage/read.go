package usage

import (
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// The read side: what a key record stores merged with what this node has
// buffered for it and not flushed yet (merge.go), so that key reads, the
// inventory's unused_for filter, rotation's adoption check and the idle
// sweep see a verify at once rather than after the next flush. k is the
// record as loaded; none of these writes it.

// LastUsed returns when a key was last verified successfully: stored, or
// buffered (in full or spilled) on this node.
func (u *Tracker) LastUsed(k *record.Key) time.Time {
	last := k.LastUsedAt
	ns, _ := u.lastUses(k.KeyID, 0)
	if t := fromNanos(ns); t.After(last) {
		last = t
	}
	return last
}

// VersionLastVerified returns when a version of a key was last verified
// successfully on this mount (zero: never). Rotation uses it to decide
// whether a new version has been adopted.
func (u *Tracker) VersionLastVerified(k *record.Key, version int) time.Time {
	var last time.Time
	if v := k.Version(version); v != nil {
		last = v.LastVerifiedAt
	}
	_, ns := u.lastUses(k.KeyID, version)
	if t := fromNanos(ns); t.After(last) {
		last = t
	}
	return last
}

// Trustworthy reports whether the recorded usage of key k can justify
// revoking it as unused for idleTimeout at now. It cannot while a verify
// that the full buffer kept nowhere (not even as a last use) happened
// within idleTimeout: that verify may have been of k. Revocation is then
// deferred, never skipped for good: lost uses age out after idleTimeout.
// The idle sweep must check it before revoking; a deferral is logged once
// per flush period.
func (u *Tracker) Trustworthy(k *record.Key, now time.Time, idleTimeout time.Duration) bool {
	lost := u.lastLost()
	if lost.IsZero() || now.Sub(lost) >= idleTimeout {
		return true
	}
	u.warnIdleDeferred(k, lost, idleTimeout)
	return false
}

// Summary is the usage shown on key reads: stored plus buffered verify
// counts by outcome, and the most recent source addresses first.
func (u *Tracker) Summary(k *record.Key) map[string]interface{} {
	counts := map[string]uint64{}
	var sources []string
	if k.Usage != nil {
		for c, n := range k.Usage.Counts {
			counts[c] = n
		}
		sources = k.Usage.RecentSources
	}
	u.mu.Lock()
	if e := u.entries[k.KeyID]; e != nil {
		for i, n := range e.counts {
			if n > 0 {
				counts[record.Outcomes[i].Code] += uint64(n)
			}
		}
		sources = mergeSources(e.sources, sources)
	}
	u.mu.Unlock()
	if sources == nil {
		sources = []string{}
	}
	return map[string]interface{}{
		"verify_counts":  counts,
		"recent_sources": sources,
	}
}

// lastUses returns the buffered last successful verify of a key and of one
// of its versions (unix ns, 0: none buffered).
func (u *Tracker) lastUses(keyID string, version int) (key, ofVersion int64) {
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
