package backend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scheduler"
)

// Retention of dead leased keys (SPEC §2 leased key, §6, §7). Every read of
// creds/<client>/<role> stores a key record and its index entry; when the
// lease ends the key is revoked but would stay for ever, so the inventory,
// the schedule's due index and the governance sweep would grow with
// every short-lived key ever issued. A leased key that has been dead (revoked,
// or past its expiry) for the config's leased_key_retention is therefore
// purged: its index entries and its record are deleted. Its history stays in
// the lifecycle log (key.issued, key.revoked, and a keys.purged entry).
//
// Cost: a scheduler.Runner (b.sched.purge) queues the leased keys that
// died, or will, up to an hour or two past now minus the retention; every
// other leased key waits as a pointer in the purge's due index in storage
// (schedule_index.go), written with each change of when the key dies
// (keySchedules.index and update, after every key change) and loaded a
// bucket at a time as the pass's horizon reaches it. A pass pops only keys
// dead since before now minus the retention, so it costs O(purgeable),
// never O(keys); the retention is applied when popping and loading, so
// changing it takes effect at the next pass without re-queueing anything. A
// pass is bounded by purgeTickMaxKeys and purgeTickBudget; what is left
// stays queued for the next one. The runner runs one pass at a time, so the
// periodic tick and tidy calls never work on the same batch.
//
// Memory: one queue item (about 150 bytes) per leased key due within the
// horizon, not per leased key in storage; with leased_key_retention=0
// (keep forever) nothing is loaded and the pointers wait in storage.
//
// Crash safety without a WAL: a purge deletes the index entries first and
// the key record last. Verify needs both, so from the first delete on the
// key answers not_found (it was already refused as revoked or expired). A
// crash in between leaves at most a record without index entries, never an
// index entry without its record; the record is still a dead leased key, so
// the queue (re-queued on error, loaded from its pointer at restart) finds it again and the
// next pass finishes the job. Deleting an absent index entry is a no-op. A
// WAL entry left by an interrupted commitKey of the key stays correct too:
// walRollback deletes the index entries that a missing record does not hold.

const (
	// purgeTickBudget and purgeTickMaxKeys bound one pass (periodic tick
	// or tidy call), so it never delays the other periodic work for long
	// and stays well under Vault's request deadline. The time budget is
	// checked between batches of purgeEventMaxKeys keys.
	purgeTickBudget  = 15 * time.Second
	purgeTickMaxKeys = 10000
	// maxTidyKeys bounds the max_keys a tidy call may ask for.
	maxTidyKeys = 100000

	// purgeEventMaxKeys is how many key ids one keys.purged entry lists.
	// The lifecycle log is kept until an operator archives it, so it must
	// not grow faster than it has to: every leased key already costs key.issued and
	// key.revoked, and one entry per key purged would add a third. A batch
	// entry listing up to 100 ids (about 3 KB) adds a small fraction of an
	// entry per key while still naming every purged key id, so an auditor
	// can follow any key from issuance to revocation to purge.
	purgeEventMaxKeys = 100
)

// leasedKeyDeadAt is when leased key k stopped (or will stop) being
// accepted: the earlier of its revocation and its expiry. It is zero for
// keys the purge never touches: keys that are not leased.
func leasedKeyDeadAt(k *record.Key) time.Time {
	if k == nil || !k.Leased {
		return time.Time{}
	}
	var dead time.Time
	if k.Revoked {
		dead = k.RevokedAt
		if dead.IsZero() {
			dead = k.CreatedAt // revoked at an unknown time: count from creation
		}
	}
	if !k.ExpiresAt.IsZero() && (dead.IsZero() || k.ExpiresAt.Before(dead)) {
		dead = k.ExpiresAt
	}
	return dead
}

// purgeStats is what one pass did.
type purgeStats struct {
	// disabled: leased_key_retention is 0, nothing is ever purged.
	disabled  bool
	retention time.Duration
	handled   int // queue items popped
	purged    int // keys deleted
	failed    int // keys left for a retry
	// remaining counts queued keys that are due but were not purged in
	// this pass (budget used up, or failed and re-queued).
	remaining int
	leftover  bool // stopped by the budget with due keys left
}

// leasePurgeTick is the periodic purge; periodic() runs it only where this
// node may write.
func (b *apikeysBackend) leasePurgeTick(ctx context.Context, req *logical.Request) error {
	_, err := b.runLeasePurge(ctx, req.Storage, nil, 0)
	return err
}

// runLeasePurge purges leased keys dead for longer than the retention, at
// most maxKeys of them (0: the per-pass default) within the time budget.
// req is the tidy request that asked for it, nil for the periodic tick; the
// keys.purged entries name it as the actor.
func (b *apikeysBackend) runLeasePurge(ctx context.Context, s logical.Storage, req *logical.Request, maxKeys int) (purgeStats, error) {
	pass := b.sched.purge.Begin()
	defer pass.End()
	var st purgeStats
	cfg, err := b.config(ctx, s)
	if err != nil {
		return st, err
	}
	st.retention = cfg.LeasedKeyRetention
	if st.retention <= 0 {
		st.disabled = true
		return st, nil
	}
	// A key is purgeable when it died at or before cutoff. Keys whose
	// purge fails are set aside (pass.Later) and queued again after the
	// pass, so the next pass (not this one) tries them again.
	now := b.clock.Now()
	cutoff := now.Add(-st.retention)
	var indexErrs []error
	if _, err := b.sched.purgeIndex.load(ctx, s, cutoff); err != nil {
		// What is queued is still purged; the next pass loads again.
		indexErrs = append(indexErrs, fmt.Errorf("loading the purge schedule: %w", err))
	}
	res, err := pass.Run(ctx, cutoff, maxKeys, func() error {
		batch, err := b.purgeCandidates(ctx, s, pass, cutoff, &st)
		if len(batch) > 0 {
			err = errors.Join(err, b.purgeBatch(ctx, s, req, st.retention, cutoff, batch, &st, pass))
		}
		// An error means storage is failing: the pass stops there.
		// Whatever was not purged is queued again and the next pass
		// retries it.
		return err
	})
	st.handled, st.leftover = res.Handled, res.Leftover
	if _, cerr := b.sched.purgeIndex.consume(ctx, s, cutoff, now); cerr != nil {
		indexErrs = append(indexErrs, fmt.Errorf("dropping handled purge schedule buckets: %w", cerr))
	}
	st.remaining = b.sched.purge.CountDue(cutoff)
	if st.purged > 0 || st.failed > 0 {
		b.logger.Info("purged dead leased keys", "purged", st.purged, "failed", st.failed,
			"remaining_due", st.remaining, "leased_key_retention", st.retention.String())
	}
	if st.leftover {
		b.logger.Warn("lease purge budget used up; remaining dead leased keys wait for the next pass", "remaining_due", st.remaining)
	}
	if err != nil {
		return st, fmt.Errorf("purging dead leased keys: %d failed: %w", st.failed, errors.Join(append([]error{err}, indexErrs...)...))
	}
	return st, errors.Join(indexErrs...)
}

// purgeCandidates pops up to purgeEventMaxKeys due queue items and returns
// the keys among them that are purgeable now. Items are re-read from
// storage (the queue may be stale): keys that are gone are dropped, keys
// that are not leased are never touched, and leased keys that died later
// than the queue said (renewed) go back to the queue at their new time.
func (b *apikeysBackend) purgeCandidates(ctx context.Context, s logical.Storage, pass *scheduler.Pass, cutoff time.Time, st *purgeStats) ([]*record.Key, error) {
	var batch []*record.Key
	for i := 0; i < purgeEventMaxKeys; i++ {
		it, ok := pass.Next()
		if !ok {
			break
		}
		client, name := splitQueueID(it.ID)
		k, err := b.getKey(ctx, s, client, name)
		if err != nil {
			st.failed++
			pass.Later(it)
			return batch, fmt.Errorf("key %s/%s: %w", client, name, err)
		}
		if k == nil || !k.Leased {
			continue // purged already, or not ours to purge
		}
		dead := leasedKeyDeadAt(k)
		if dead.IsZero() {
			continue
		}
		if dead.After(cutoff) {
			b.sched.purgeIndex.offer(it.ID, dead)
			continue
		}
		batch = append(batch, k)
	}
	return batch, nil
}

// purgeBatch logs one keys.purged entry naming the batch, then purges each
// key. The entry is written first so no key is ever deleted without the log
// saying so; a key whose purge then fails stays queued, and the pass that
// finishes it lists it again (an id may appear in two entries; the key is
// gone after the later one).
func (b *apikeysBackend) purgeBatch(ctx context.Context, s logical.Storage, req *logical.Request, retention time.Duration, cutoff time.Time, batch []*record.Key, st *purgeStats, pass *scheduler.Pass) error {
	ids := make([]string, len(batch))
	for i, k := range batch {
		ids[i] = k.KeyID
	}
	ev := systemEvent(eventlog.KeysPurged)
	trigger := "periodic"
	if req != nil {
		ev = eventFromRequest(req, eventlog.KeysPurged)
		trigger = "tidy"
	}
	ev.Details = map[string]string{
		"count":                strconv.Itoa(len(batch)),
		"key_ids":              strings.Join(ids, ","),
		"leased_key_retention": retention.String(),
		"trigger":              trigger,
	}
	if err := b.log.Append(ctx, s, ev); err != nil {
		// Nothing is deleted unless the log says so.
		retryLater(pass, batch)
		st.failed += len(batch)
		return err
	}
	step := func(name string) error {
		if b.commitHook != nil {
			return b.commitHook(name)
		}
		return nil
	}
	if err := step("purge:logged"); err != nil {
		retryLater(pass, batch)
		st.failed += len(batch)
		return err
	}
	var purged []string
	defer func() { b.dropGovMarks(ctx, s, purged) }()
	for i, k := range batch {
		done, err := b.purgeLeasedKey(ctx, s, k.Client, k.Name, k.KeyID, cutoff)
		if err != nil {
			// Leave this key and the rest of the batch for the next pass.
			retryLater(pass, batch[i:])
			st.failed += len(batch) - i
			return fmt.Errorf("key %s/%s: %w", k.Client, k.Name, err)
		}
		if done {
			st.purged++
			purged = append(purged, k.KeyID)
		}
	}
	return nil
}

// retryLater sets the keys of a batch aside for the next pass.
func retryLater(pass *scheduler.Pass, keys []*record.Key) {
	for _, k := range keys {
		pass.Later(scheduler.Item{ID: queueID(k.Client, k.Name), Due: leasedKeyDeadAt(k)})
	}
}

// dropGovMarks deletes the governance marks (package governance) of purged
// keys, which the sweep would otherwise never visit again. It takes the
// governance lock after the key locks are released (the governance tick
// takes key locks under it), so a tick never writes back a mark it loaded
// before the purge. A mark left by a failed delete is a small orphan entry.
func (b *apikeysBackend) dropGovMarks(ctx context.Context, s logical.Storage, keyIDs []string) {
	if len(keyIDs) == 0 {
		return
	}
	b.gov.DropMarks(ctx, s, keyIDs, func(id string, err error) {
		b.logger.Warn("could not delete the governance marks of a purged leased key", "key_id", id, "error", err)
	})
}

// purgeLeasedKey deletes one dead leased key under its locks, after
// checking again that the stored key is the same leased key and still dead
// since before cutoff. Index entries go first, the record last (see the
// top of this file). It reports whether it deleted the record.
func (b *apikeysBackend) purgeLeasedKey(ctx context.Context, s logical.Storage, client, name, keyID string, cutoff time.Time) (bool, error) {
	defer b.locks.lockKey(client, name)()
	k, err := b.getKey(ctx, s, client, name)
	if err != nil {
		return false, err
	}
	if k == nil || k.KeyID != keyID || !k.Leased {
		return false, nil
	}
	if dead := leasedKeyDeadAt(k); dead.IsZero() || dead.After(cutoff) {
		b.sched.purgeIndex.place(queueID(client, name), dead)
		return false, nil
	}
	// A change of the key cut off after its key write (say the lease's
	// revocation) still owes its log entries; once the record is gone,
	// Vault's WAL rollback would take it for a change that never happened.
	if err := b.finishInterruptedCommit(ctx, s, k); err != nil {
		return false, err
	}
	for _, v := range k.Versions {
		if v.HMAC == "" {
			continue
		}
		// Delete only an entry that points at this key: an index entry is
		// never shared, but a purge must never remove another key's.
		ie, err := b.getIndex(ctx, s, v.HMAC)
		if err != nil {
			return false, err
		}
		if ie != nil && ie.Client == client && ie.Name == name && ie.KeyID == keyID {
			if err := s.Delete(ctx, indexStorageKey(v.HMAC)); err != nil {
				return false, fmt.Errorf("deleting index entry: %w", err)
			}
		}
		b.cache.invalidate(indexStorageKey(v.HMAC))
	}
	if b.commitHook != nil {
		if err := b.commitHook("purge:index"); err != nil {
			return false, err
		}
	}
	// The inventory's key id pointer (keyid_index.go) goes with the key.
	if err := s.Delete(ctx, storageKeyIDPrefix+keyID); err != nil {
		return false, fmt.Errorf("deleting key id pointer: %w", err)
	}
	if err := s.Delete(ctx, keyStorageKey(client, name)); err != nil {
		return false, fmt.Errorf("deleting key record: %w", err)
	}
	b.cache.invalidate(keyStorageKey(client, name))
	b.cache.limits.Forget(keyID)
	b.sched.purge.Remove(queueID(client, name))
	return true, nil
}
