package governance

import (
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// OverdueTolerance is how late past its due time a scheduled rotation may
// be before the key counts as overdue (the rotation tick runs about once a
// minute and may wait for a rotation_window).
const OverdueTolerance = time.Hour

// RotationOverdue reports whether a rotation due at due (zero: none
// scheduled) is overdue at now.
func RotationOverdue(due, now time.Time) bool {
	return !due.IsZero() && now.Sub(due) > OverdueTolerance
}

// ReviewDue reports whether a key unused for unused is due for review
// under the mount's review_period (zero: never).
func ReviewDue(unused, reviewPeriod time.Duration) bool {
	return reviewPeriod > 0 && unused >= reviewPeriod
}

// IdleFor is how long a key of client c last used (or created) at lastUsed
// has been idle for its role's idle_timeout: since lastUsed, or since its
// client was unlocked if that is later. A locked client's keys cannot be
// used, so a lock never counts as idleness and never ends in an idle
// revocation: lock/unlock stays reversible (SPEC §6).
func IdleFor(lastUsed time.Time, c *record.Client, now time.Time) time.Duration {
	if c != nil && c.Status == record.ClientLocked {
		return 0
	}
	since := lastUsed
	if c != nil && c.StatusChangedAt.After(since) {
		since = c.StatusChangedAt
	}
	return now.Sub(since)
}
