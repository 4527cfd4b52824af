package backend

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scheduler"
)

// keySchedules are the two scheduler.Runners that act on keys when they
// fall due, their due indexes in storage and the load that fills them: the
// rotation's (rotation.go: rotation, end of grace, hard expiry) and the
// purge of dead leased keys (lease_purge.go). Memory holds what falls due
// within a horizon of an hour or two; the rest waits in storage as
// pointers in hourly buckets (schedule_index.go). plan notes a key's
// pointers on it before each change of the key is stored and the commit
// writes them first (writeAsync; index where there is no commit), update
// queues the key in memory after, and the mount's start loads the buckets
// up to the horizon (loadSchedules), then each pass loads the next ones as
// time moves. The runners, the indexes and the load lock for themselves.
type keySchedules struct {
	clock clock.Clock
	// rotation queues managed keys by when the engine next needs them
	// (record.DueAt).
	rotation *scheduler.Runner
	// purge queues leased keys by when they died or will (leasedKeyDeadAt).
	purge *scheduler.Runner
	// rotationIndex and purgeIndex are their due indexes in storage.
	rotationIndex, purgeIndex *dueIndex
	// rebuild is the background load at mount start (and the one-time
	// backfill of keys stored before the index existed).
	rebuild *scheduler.Rebuild
	// backfilled caches the end of the backfill, which is never undone.
	backfilled atomic.Bool
	// startAtTick: the mount started where this node could not write, so
	// the first tick where it can starts the load.
	startAtTick atomic.Bool
}

// rebuildTimeout bounds one run of the background load.
const rebuildTimeout = 30 * time.Minute

// initSchedules builds the key schedules and the rotation state as o
// chooses.
func initSchedules(b *apikeysBackend, o backendOptions) {
	if o.rotationLimits == (scheduler.Limits{}) {
		o.rotationLimits = scheduler.Limits{Budget: tickBudget, MaxItems: tickMaxKeys}
	}
	if o.purgeLimits == (scheduler.Limits{}) {
		o.purgeLimits = scheduler.Limits{Budget: purgeTickBudget, MaxItems: purgeTickMaxKeys}
	}
	var runnerOpts []scheduler.Option
	if o.stopwatch != nil {
		runnerOpts = append(runnerOpts, scheduler.WithStopwatch(o.stopwatch))
	}
	rotation := scheduler.NewRunner(o.rotationLimits, runnerOpts...)
	purge := scheduler.NewRunner(o.purgeLimits, runnerOpts...)
	b.sched = keySchedules{
		clock:         b.clock,
		rotation:      rotation,
		purge:         purge,
		rotationIndex: newDueIndex("rotation", rotation, o.rotationLimits),
		purgeIndex:    newDueIndex("purge", purge, o.purgeLimits),
		rebuild:       scheduler.NewRebuild(rebuildTimeout),
	}
	b.rot.adoption = b.cache.usage.VersionLastVerified
	if o.adoption != nil {
		b.rot.adoption = o.adoption
	}
	b.rot.instance = newInstanceID()
}

func queueID(client, name string) string { return client + "/" + name }

// splitQueueID reverses queueID; client names never contain "/".
func splitQueueID(id string) (client, name string) {
	client, name, _ = strings.Cut(id, "/")
	return client, name
}

// index stores the pointers key k needs in the due indexes before k is
// stored, and notes their due times on k (see plan). It reports whether it
// changed k. Callers hold the key's lock.
func (ks *keySchedules) index(ctx context.Context, s logical.Storage, k *record.Key) (bool, error) {
	now := ks.clock.Now()
	ws := ks.plan(k, now)
	return len(ws) > 0, ks.write(ctx, s, ws, now)
}

// pointerWrite is a pointer a change of a key needs.
type pointerWrite struct {
	index *dueIndex
	id    string
	due   time.Time
}

// plan notes on k the due times of the pointers it needs and returns the
// ones to write: a pointer only where a due time changed, so most changes
// write none (a due time gone needs no pointer; the old one is stale). The
// rotation's due time depends on now only by moving later as now does
// (record.DueAt), so a pointer planned now is never late for the due time
// update queues a moment after.
func (ks *keySchedules) plan(k *record.Key, now time.Time) []pointerWrite {
	var ws []pointerWrite
	for _, p := range ks.pointersOf(k, now) {
		if p.due.Equal(*p.noted) {
			continue
		}
		if !p.due.IsZero() {
			ws = append(ws, pointerWrite{p.index, queueID(k.Client, k.Name), p.due})
		}
		*p.noted = p.due
	}
	return ws
}

func (ks *keySchedules) write(ctx context.Context, s logical.Storage, ws []pointerWrite, now time.Time) error {
	for _, w := range ws {
		if err := w.index.put(ctx, s, w.id, w.due, now); err != nil {
			return err
		}
	}
	return nil
}

// writeAsync writes ws alongside the caller's next storage operations, so
// a commit does not wait one more round trip into Vault's storage for
// them; the returned wait, which may be called more than once, returns the
// result. The caller waits before it stores the record the pointers are
// for.
func (ks *keySchedules) writeAsync(ctx context.Context, s logical.Storage, ws []pointerWrite, now time.Time) (wait func() error) {
	if len(ws) == 0 {
		return func() error { return nil }
	}
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = ks.write(ctx, s, ws, now)
	}()
	return func() error {
		<-done
		return err
	}
}

// keyPointer is what a key needs in one due index: its due time there
// (zero: none) and the field of the key that notes its pointer's.
type keyPointer struct {
	index *dueIndex
	due   time.Time
	noted *time.Time
}

func (ks *keySchedules) pointersOf(k *record.Key, now time.Time) []keyPointer {
	return []keyPointer{
		{ks.rotationIndex, record.DueAt(k, now), &k.RotationPointer},
		{ks.purgeIndex, leasedKeyDeadAt(k), &k.PurgePointer},
	}
}

// update brings both runners' memory in step with key k as stored: the
// rotation's (when the engine next needs it) and, for a leased key, the
// purge's (when it died or will), each in memory only if due within what
// is loaded. commitKey calls it, under the key's lock, as soon as a change
// of the key is written; the rotation tick calls it for a key it handled
// without a commit.
//
// It hangs off the commit of a change, not off every write of the record:
// the usage flush (just before each rotation tick) and edits of purpose or
// metadata write the record without changing when it is due, and
// rescheduling on them would undo what the tick relies on: a key queued for
// the early adoption decision (DueAt depends on now) would move to the end
// of its grace, and a key re-queued after a failure would lose its retry
// delay. The purge loses nothing by it: those writes never change when a
// leased key died, and issuance, renewal and revocation are commits.
func (ks *keySchedules) update(k *record.Key) {
	if k == nil {
		return
	}
	id := queueID(k.Client, k.Name)
	ks.rotationIndex.place(id, record.DueAt(k, ks.clock.Now()))
	if k.Leased {
		ks.purgeIndex.place(id, leasedKeyDeadAt(k))
	}
}

// initRotation starts loading the schedules when the mount starts, where
// this node may write (only there do the ticks run). The load runs in the
// background so a mount that was down for long starts at once; ticks
// meanwhile handle whatever is already queued (every queued item is
// re-read from storage before anything is done).
func (b *apikeysBackend) initRotation(ctx context.Context, s logical.Storage) error {
	if !b.writeSafe() {
		// A node that may write later without the mount starting again
		// (a replication state change) starts the load at its first tick.
		b.sched.startAtTick.Store(true)
		return nil
	}
	b.sched.rebuild.Start(func(ctx context.Context) error { return b.loadSchedules(ctx, s) })
	return nil
}

// loadSchedules reads both indexes' cursors, loads what is due up to their
// horizons and then, once in the mount's life, backfills the pointers of
// keys stored before the index existed. Its cost follows the keys due
// within the horizon (and the buckets listed), not the keys of the mount.
func (b *apikeysBackend) loadSchedules(ctx context.Context, s logical.Storage) error {
	start := time.Now()
	now := b.clock.Now()
	ks := &b.sched
	for _, x := range []*dueIndex{ks.rotationIndex, ks.purgeIndex} {
		if err := x.start(ctx, s, now); err != nil {
			return b.scheduleLoadFailed(err)
		}
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return b.scheduleLoadFailed(err)
	}
	for _, h := range ks.horizons(cfg, now) {
		for {
			if err := ctx.Err(); err != nil {
				return b.scheduleLoadFailed(err)
			}
			before := h.index.loadedBucket()
			done, err := h.index.load(ctx, s, h.at)
			if err != nil {
				return b.scheduleLoadFailed(err)
			}
			if done || h.index.loadedBucket().Equal(before) {
				break // covered, or the queue is full: passes load the rest
			}
		}
	}
	if err := b.runScheduleBackfill(ctx, s); err != nil {
		return b.scheduleLoadFailed(err)
	}
	b.logger.Info("key schedules loaded", "rotation_queued", ks.rotation.Len(), "purge_queued", ks.purge.Len(), "duration", time.Since(start).String())
	return nil
}

// indexHorizon is how far one index's memory must reach.
type indexHorizon struct {
	index *dueIndex
	at    time.Time
}

// horizons are the indexes' horizons at now: the rotation's is now; the
// purge's is now less the leased-key retention, and it has none while the
// purge is off (retention 0).
func (ks *keySchedules) horizons(cfg *record.Config, now time.Time) []indexHorizon {
	hs := []indexHorizon{{ks.rotationIndex, now}}
	if cfg.LeasedKeyRetention > 0 {
		hs = append(hs, indexHorizon{ks.purgeIndex, now.Add(-cfg.LeasedKeyRetention)})
	}
	return hs
}

func (b *apikeysBackend) scheduleLoadFailed(err error) error {
	b.logger.Error("loading the key schedules failed; the next rotation tick tries again", "error", err)
	return err
}
