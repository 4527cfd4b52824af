package record

import (
	"sort"
	"time"
)

// Vault Agent contract (SPEC §4). Agent (consul-template) re-reads a secret
// without a lease after its integer "ttl" (plus one second) when
// "rotation_period" is present, and not before.
// It also treats any response whose data.metadata is a JSON object without
// a "deletion_time" string as a deleted KV v2 secret and refuses to render
// it, so a key read returns its metadata as a sorted list of "key=value"
// pairs (the same form the metadata field accepts on write).

// MetadataPairs renders metadata as sorted "key=value" strings.
func MetadataPairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// OverdueRecheck is the ttl reported for a key whose rotation is due but not
// done yet: the rotation tick runs about once a minute, so Vault Agent should
// look again shortly rather than re-read in a tight loop (a ttl of 0 would
// make it wait its default of five minutes).
const OverdueRecheck = 15 * time.Second

// MaxReadMargin bounds ReadMargin for long graces.
const MaxReadMargin = 5 * time.Minute

// ReadMargin is how long before the previous version's grace ends a reader
// told "valid for ttl seconds" must have re-read: Agent's extra second, its
// request, rendering the file and reloading the application. A quarter of
// the grace, at most MaxReadMargin.
func ReadMargin(grace time.Duration) time.Duration {
	m := grace / 4
	if m > MaxReadMargin {
		m = MaxReadMargin
	}
	return m
}

// AgentTTL is the "ttl" a read of managed key k returns at now: a promise
// that the version returned stays accepted for that long. Any rotation may
// happen right after the read, by the schedule or by hand (rotate, promote,
// rollback), and the version returned then stays accepted only for the
// role's grace_period. So the ttl is the time until the key next changes on
// its schedule, but never more than the grace minus ReadMargin: a reader
// always re-reads, and picks up the new version, before a rotation it did
// not hear about retires the one it holds. The grace is not lengthened for
// readers (that would keep a replaced secret alive past what the operator
// set), and nothing is stored per read, so reads stay reads.
func AgentTTL(k *Key, grace time.Duration, now time.Time) int64 {
	if k.NextRotationAt.IsZero() || k.Revoked || k.Leased {
		return 0
	}
	next := k.NextRotationAt
	if p := k.VersionByState(StatePrevious); p != nil && p.GraceEndsAt.After(next) {
		// The rotation waits for the previous version's grace to end
		// (backend/rotation_key.go), so that is when the key changes next.
		next = p.GraceEndsAt
	}
	remaining := next.Sub(now)
	if remaining <= 0 {
		remaining = OverdueRecheck
	}
	if grace > 0 {
		if limit := grace - ReadMargin(grace); remaining > limit {
			remaining = limit
		}
	}
	if !k.ExpiresAt.IsZero() {
		if untilExpiry := k.ExpiresAt.Sub(now); untilExpiry > 0 && remaining > untilExpiry {
			remaining = untilExpiry
		}
	}
	ttl := int64((remaining + time.Second - 1) / time.Second)
	if ttl < 1 {
		ttl = 1
	}
	return ttl
}
