package usage

import (
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// losses are the records the buffer could not keep in full since the
// previous report.
type losses struct {
	uncounted, spilled, lost uint64
	lostAt                   time.Time // latest use kept nowhere, ever
	backlog, spillLen        int
}

// takeLosses returns and resets the loss counters, and re-arms the
// idle-deferral warning: both are once per flush period.
func (u *Tracker) takeLosses() losses {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := losses{uncounted: u.uncounted, spilled: u.spilled, lost: u.lost, lostAt: fromNanos(u.lostAt),
		backlog: u.queue.len(), spillLen: len(u.spill)}
	u.uncounted, u.spilled, u.lost = 0, 0, 0
	u.deferWarned = false
	return l
}

// reportLosses logs, once per flush, what the buffer could not keep in
// full since the previous one.
func (u *Tracker) reportLosses() {
	l := u.takeLosses()
	if l.uncounted == 0 {
		return
	}
	if l.lost > 0 {
		u.logger().Warn("usage buffer full: verifies were not recorded; idle_timeout revocations are deferred until they age out",
			"not_counted", l.uncounted, "last_use_kept_only", l.spilled, "lost", l.lost,
			"last_lost_at", l.lostAt.Format(time.RFC3339), "keys_buffered", l.backlog)
		return
	}
	u.logger().Warn("usage buffer full: verify counts and sources of some keys were not recorded (their last use was kept)",
		"not_counted", l.uncounted, "last_use_kept_only", l.spilled, "keys_buffered", l.backlog)
}

// lastLost is the latest successful verify that was kept nowhere (zero:
// none since this node started).
func (u *Tracker) lastLost() time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return fromNanos(u.lostAt)
}

// warnIdleDeferred logs, at most once per flush period, that the sweep
// deferred an idle revocation because usage may be missing.
func (u *Tracker) warnIdleDeferred(k *record.Key, lost time.Time, idleTimeout time.Duration) {
	u.mu.Lock()
	warned, log := u.deferWarned, u.log
	u.deferWarned = true
	u.mu.Unlock()
	if !warned {
		log.Warn("idle_timeout revocation deferred: the usage buffer was full and verifies went unrecorded, so the key may be in use",
			"client", k.Client, "key_id", k.KeyID, "idle_timeout", idleTimeout.String(),
			"last_lost_at", lost.Format(time.RFC3339), "deferred_until", lost.Add(idleTimeout).Format(time.RFC3339))
	}
}
