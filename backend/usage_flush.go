package backend

import (
	"context"
	"errors"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// Flushing buffered usage (usage_buffer.go) into the key records, from the
// periodic func about once a minute.
//
// A flush takes on the whole backlog it finds, oldest first: one storage
// write per key verified since the previous flush. A fixed batch per tick
// (as before) lets the buffer fill up as soon as more distinct keys are
// verified per minute than the batch; then it stays full and later keys'
// uses are lost. Only a time budget stops a flush early, so that it never
// holds up the rest of the periodic work (Vault cancels a periodic run
// after 90 s); what is left is flushed first next time. When storage
// cannot keep up even so, the buffer degrades as usage_buffer.go describes
// and the losses are logged here.

const (
	// usageFlushBudget bounds the time one flush spends writing; with the
	// lease purge's 15 s and the sweep it stays well within Vault's 90 s.
	usageFlushBudget = 20 * time.Second
	// usageFlushChunk is how many snapshots are taken under the tracker's
	// mutex at a time, so verify never waits long for it.
	usageFlushChunk = 500
	// maxUsageFlushErrors stops a flush after that many failed writes
	// (storage is failing: the rest waits for the next tick).
	maxUsageFlushErrors = 10
)

// usageFlushLimits are the flush's time source and budget; tests replace
// them (b.clock is domain time, which tests freeze).
type usageFlushLimits struct {
	stopwatch func() time.Time
	budget    time.Duration
}

// flushUsage writes buffered usage to storage; called from the periodic func.
func (b *apikeysBackend) flushUsage(ctx context.Context, req *logical.Request) error {
	b.cache.limits.Prune(b.clock.Now())
	u := b.cache.usage
	b.reportUsageLosses()
	lim := u.flushLimits
	start := lim.stopwatch()
	backlog := u.backlog() // not what is requeued meanwhile: once per flush
	var errs []error
	for done := 0; done < backlog; {
		if lim.stopwatch().Sub(start) >= lim.budget {
			b.logger.Warn("usage flush stopped at its time budget; the rest is flushed next time",
				"flushed", done, "left", backlog-done, "budget", lim.budget.String())
			break
		}
		batch := u.snapshots(min(usageFlushChunk, backlog-done))
		if len(batch) == 0 {
			break
		}
		done += len(batch)
		for i, sn := range batch {
			if err := ctx.Err(); err != nil {
				u.unflushed(batch[i:]...)
				return errors.Join(append(errs, err)...)
			}
			if lim.stopwatch().Sub(start) >= lim.budget {
				// Slow storage: stop within the budget, not a chunk later.
				u.unflushed(batch[i:]...)
				b.logger.Warn("usage flush stopped at its time budget; the rest is flushed next time",
					"left", backlog-done+len(batch)-i, "budget", lim.budget.String())
				return errors.Join(errs...)
			}
			if err := b.persistUsage(ctx, req.Storage, sn); err != nil {
				u.unflushed(sn)
				if errs = append(errs, err); len(errs) >= maxUsageFlushErrors {
					u.unflushed(batch[i+1:]...)
					return errors.Join(errs...)
				}
				continue
			}
			u.flushed(sn)
		}
	}
	return errors.Join(errs...)
}

// reportUsageLosses logs, once per flush, what the usage buffer could not
// keep in full since the previous one, and re-arms the idle-deferral
// warning.
func (b *apikeysBackend) reportUsageLosses() {
	u := b.cache.usage
	l := u.takeLosses()
	u.mu.Lock()
	u.deferWarned = false
	u.mu.Unlock()
	if l.uncounted == 0 {
		return
	}
	if l.lost > 0 {
		b.logger.Warn("usage buffer full: verifies were not recorded; idle_timeout revocations are deferred until they age out",
			"not_counted", l.uncounted, "last_use_kept_only", l.spilled, "lost", l.lost,
			"last_lost_at", l.lostAt.Format(time.RFC3339), "keys_buffered", l.backlog)
		return
	}
	b.logger.Warn("usage buffer full: verify counts and sources of some keys were not recorded (their last use was kept)",
		"not_counted", l.uncounted, "last_use_kept_only", l.spilled, "keys_buffered", l.backlog)
}

// warnIdleDeferred logs, at most once per flush period, that the sweep
// deferred an idle revocation because usage may be missing.
func (b *apikeysBackend) warnIdleDeferred(k *record.Key, lost time.Time, idleTimeout time.Duration) {
	u := b.cache.usage
	u.mu.Lock()
	warned := u.deferWarned
	u.deferWarned = true
	u.mu.Unlock()
	if !warned {
		b.logger.Warn("idle_timeout revocation deferred: the usage buffer was full and verifies went unrecorded, so the key may be in use",
			"client", k.Client, "key_id", k.KeyID, "idle_timeout", idleTimeout.String(),
			"last_lost_at", lost.Format(time.RFC3339), "deferred_until", lost.Add(idleTimeout).Format(time.RFC3339))
	}
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
			k.Usage.Counts[record.UsageOutcomes[i]] += uint64(n)
		}
	}
	k.Usage.RecentSources = mergeSources(e.sources, k.Usage.RecentSources)
	return b.putKey(ctx, s, k)
}
