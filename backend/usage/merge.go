package usage

import "github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"

// The merge rules: how buffered usage adds to what a key record stores.
// A flush applies them to the record it writes (MergeInto); readers apply
// the same rules to a copy (read.go), so a read before and after a flush
// shows the same usage.

// maxRecentSources bounds the source addresses remembered per key.
const maxRecentSources = 8

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

// CanonicalSource returns the canonical form of a client_ip, or "" when it
// is not an IP address (then it is not remembered).
func CanonicalSource(s string) string {
	a, ok := record.ParseIP(s)
	if !ok {
		return ""
	}
	return a.String()
}

// MergeInto adds the snapshot's usage to k, the key record it was taken
// for: last uses only move forward (per version too, for versions k still
// has), counts add up and the snapshot's sources go in front.
func (sn *Snapshot) MergeInto(k *record.Key) {
	e := &sn.entry
	if t := fromNanos(e.lastUsed); t.After(k.LastUsedAt) {
		k.LastUsedAt = t
	}
	for _, vu := range e.versions {
		if v := k.Version(int(vu.version)); v != nil && vu.at != 0 && fromNanos(vu.at).After(v.LastVerifiedAt) {
			v.LastVerifiedAt = fromNanos(vu.at)
		}
	}
	if k.Usage == nil {
		k.Usage = &record.KeyUsage{}
	}
	if k.Usage.Counts == nil {
		k.Usage.Counts = map[string]uint64{}
	}
	for i, n := range e.counts {
		if n > 0 {
			k.Usage.Counts[record.Outcomes[i].Code] += uint64(n)
		}
	}
	k.Usage.RecentSources = mergeSources(e.sources, k.Usage.RecentSources)
}
