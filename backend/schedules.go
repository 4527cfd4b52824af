package backend

import (
	"context"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scheduler"
)

// keySchedules are the two scheduler.Runners that act on keys when they
// fall due, and the scan that refills them: the rotation's (rotation.go:
// rotation, end of grace, hard expiry) and the purge of dead leased keys
// (lease_purge.go). Their queues live in memory only: update keeps them
// current after every key change, and rebuild fills them from one scan of
// storage when the mount starts (initRotation). The runners and the rebuild
// lock for themselves.
type keySchedules struct {
	clock clock.Clock
	// rotation queues managed keys by when the engine next needs them
	// (record.DueAt).
	rotation *scheduler.Runner
	// purge queues leased keys by when they died or will (leasedKeyDeadAt).
	purge *scheduler.Runner
	// rebuild is the startup scan that fills both.
	rebuild *scheduler.Rebuild
}

// rebuildTimeout bounds the background rebuild of the queues.
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
	b.sched = keySchedules{
		clock:    b.clock,
		rotation: scheduler.NewRunner(o.rotationLimits, runnerOpts...),
		purge:    scheduler.NewRunner(o.purgeLimits, runnerOpts...),
		rebuild:  scheduler.NewRebuild(rebuildTimeout),
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

// update brings both runners in step with key k as stored: the rotation's
// (when the engine next needs it) and, for a leased key, the purge's (when
// it died or will). commitKey calls it, under the key's lock, as soon as a
// change of the key is written; the rotation tick calls it for a key it
// handled without writing it.
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
	ks.rotation.Schedule(id, record.DueAt(k, ks.clock.Now()))
	if k.Leased {
		ks.purge.Schedule(id, leasedKeyDeadAt(k))
	}
}

// offer queues key k as found by the startup scan, in whichever runner
// wants it, unless a change on this node queued it meanwhile (which is
// fresher than what the scan read). It reports whether the rotation's
// runner took it.
func (ks *keySchedules) offer(k *record.Key) bool {
	id := queueID(k.Client, k.Name)
	if dead := leasedKeyDeadAt(k); !dead.IsZero() {
		ks.purge.Offer(id, dead)
	}
	due := record.DueAt(k, ks.clock.Now())
	return !due.IsZero() && ks.rotation.Offer(id, due)
}

// initRotation starts the rebuild of both runners' queues when the backend
// starts. The scan of all keys runs in the background so a large mount
// starts at once; ticks meanwhile handle whatever is already queued (every
// queued item is re-read from storage before anything is done), and the
// rest is picked up by later ticks once the rebuild has queued it.
func (b *apikeysBackend) initRotation(ctx context.Context, s logical.Storage) error {
	b.sched.rebuild.Start(func(ctx context.Context) error { return b.rebuildSchedule(ctx, s) })
	return nil
}

// rebuildSchedule scans every key once and offers it to both runners, so
// startup reads every key once, not twice.
func (b *apikeysBackend) rebuildSchedule(ctx context.Context, s logical.Storage) error {
	start := time.Now()
	n := 0
	err := b.forEachKey(ctx, s, func(k *record.Key) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if b.sched.offer(k) {
			n++
		}
		return true, nil
	})
	if err != nil {
		b.logger.Error("rebuilding the rotation schedule failed; the next rotation tick tries again", "error", err, "keys_queued", n)
	} else {
		b.logger.Info("rotation schedule rebuilt", "keys_queued", n, "duration", time.Since(start).String())
	}
	return err
}
