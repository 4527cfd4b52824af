package usage

import (
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// entry is what verify buffered for one key since the last flush.
// It is kept small (times as unix nanoseconds, no maps): there is one per
// key verified since the last flush.
type entry struct {
	client, name string
	lastUsed     int64 // unix ns of the last successful verify
	// versions holds the last successful verify per version; at most
	// three versions (active, previous, pending) verify at a time.
	versions [3]versionUse
	counts   [len(record.Outcomes)]uint32
	seq      uint32   // bumped on every record
	sources  []string // most recent first
}

type versionUse struct {
	version int32
	at      int64 // unix ns
}

// lastVerified returns when version was last verified (0: not since the
// last flush).
func (e *entry) lastVerified(version int) int64 {
	for _, v := range e.versions {
		if v.at != 0 && int(v.version) == version {
			return v.at
		}
	}
	return 0
}

// verified notes a successful verify of version at ns, replacing the
// least recent slot when all are taken.
func (e *entry) verified(version int, ns int64) {
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
