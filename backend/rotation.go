package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/schedule"
)

// Scheduled rotation (SPEC §4). An in-memory priority queue holds, for every
// managed key, when it next needs attention (see dueAt). Core calls
// scheduleKey after every key change; initRotation rebuilds the queue from
// storage when the mount starts; rotationTick (from the PeriodicFunc, about
// once a minute, only where this node may write) pops what is due, so a tick
// costs O(due), not O(keys).

const (
	// tickBudget keeps a tick well under Vault's 90 s request deadline;
	// keys left over stay queued for the next tick.
	tickBudget = 30 * time.Second
	// tickMaxKeys bounds the keys handled by one tick.
	tickMaxKeys = 20000
	// retryAfterError re-queues a key whose handling failed.
	retryAfterError = time.Minute
	// retryAfterUserError re-queues a key that cannot rotate until someone
	// fixes it (its role was deleted, its client de-provisioned).
	retryAfterUserError = time.Hour
	// rebuildTimeout bounds the background rebuild of the queue.
	rebuildTimeout = 30 * time.Minute
)

// rotationState is the engine's per-mount state. Its zero value is usable:
// the backend embeds it and rotation() initialises it on first use.
type rotationState struct {
	once  sync.Once
	queue *schedule.Queue
	// rebuilt is closed when the rebuild from storage has finished;
	// rebuildErr holds its error, if any. A failed rebuild is started
	// again by the next tick, with a new channel; rebuildMu guards both.
	rebuildMu  sync.Mutex
	rebuilt    chan struct{}
	rebuilding atomic.Bool
	rebuildErr error

	// adoption returns when a version was last verified (zero: never);
	// tests fake it. Defaults to the usage tracker's VersionLastVerified.
	adoption func(k *record.Key, version int) time.Time
	// stopwatch measures the tick's real elapsed time against its budget
	// (b.clock is domain time, which tests freeze).
	stopwatch func() time.Time
	budget    time.Duration
	maxKeys   int

	// instance identifies this backend instance in the WAL entries it
	// writes (walIndex.Owner).
	instance string
	// settled holds the commits settled at start by WAL entry id (see
	// noteSettled); settledMu guards it.
	settledMu sync.Mutex
	settled   map[string]walIndex

	// reschedules counts background passes of rescheduleRoleKeys (tests
	// wait for them).
	reschedules sync.WaitGroup
}

func (b *apikeysBackend) rotation() *rotationState {
	r := &b.rot
	r.once.Do(func() {
		r.queue = schedule.NewQueue()
		r.rebuilt = make(chan struct{})
		r.adoption = b.cache.usage.VersionLastVerified
		r.stopwatch = time.Now
		r.budget = tickBudget
		r.maxKeys = tickMaxKeys
		r.instance = newInstanceID()
	})
	return r
}

func queueID(client, name string) string { return client + "/" + name }

// splitQueueID reverses queueID; client names never contain "/".
func splitQueueID(id string) (client, name string) {
	client, name, _ = strings.Cut(id, "/")
	return client, name
}

// scheduleKey tells the rotation schedule about a key's next due time. Core
// calls it, under the key's lock, after every change of a key.
func (b *apikeysBackend) scheduleKey(k *record.Key) {
	if k == nil {
		return
	}
	q := b.rotation().queue
	id := queueID(k.Client, k.Name)
	if due := record.DueAt(k, b.clock.Now()); !due.IsZero() {
		q.Upsert(id, due)
	} else {
		q.Remove(id)
	}
}

// initRotation builds the in-memory schedule when the backend starts. The
// scan of all keys runs in the background so a large mount starts at once;
// ticks meanwhile handle whatever is already queued (every queued item is
// re-read from storage before anything is done), and the rest is picked up
// by later ticks once the rebuild has queued it.
func (b *apikeysBackend) initRotation(ctx context.Context, s logical.Storage) error {
	r := b.rotation()
	if !r.rebuilding.CompareAndSwap(false, true) {
		return nil
	}
	r.rebuildMu.Lock()
	defer r.rebuildMu.Unlock()
	b.startRebuildLocked(s)
	return nil
}

// retryFailedRebuild starts the scan again when the last one failed (say a
// transient storage error at startup): otherwise the keys it did not queue
// would not rotate, and dead leased keys not be purged, until a restart.
// The rotation tick calls it, so a failing scan is retried once a tick.
func (b *apikeysBackend) retryFailedRebuild(s logical.Storage) {
	r := b.rotation()
	if !r.rebuilding.Load() {
		return // never started: initialize has not run
	}
	r.rebuildMu.Lock()
	defer r.rebuildMu.Unlock()
	select {
	case <-r.rebuilt:
	default:
		return // still running
	}
	if r.rebuildErr == nil {
		return
	}
	b.logger.Warn("retrying the rotation schedule rebuild after a failure", "error", r.rebuildErr)
	b.startRebuildLocked(s)
}

// startRebuildLocked runs rebuildSchedule in the background; the caller
// holds rebuildMu.
func (b *apikeysBackend) startRebuildLocked(s logical.Storage) {
	r := b.rotation()
	done := make(chan struct{})
	r.rebuilt, r.rebuildErr = done, nil
	go func() {
		// Vault cancels the initialisation request's context when
		// InitializeFunc returns; the rebuild outlives it.
		bctx, cancel := context.WithTimeout(context.Background(), rebuildTimeout)
		defer cancel()
		start := time.Now()
		n, err := b.rebuildSchedule(bctx, s)
		if err != nil {
			b.logger.Error("rebuilding the rotation schedule failed; the next rotation tick tries again", "error", err, "keys_queued", n)
		} else {
			b.logger.Info("rotation schedule rebuilt", "keys_queued", n, "duration", time.Since(start).String())
		}
		r.rebuildMu.Lock()
		r.rebuildErr = err
		r.rebuildMu.Unlock()
		close(done)
	}()
}

// rebuildSchedule scans every key once and queues the managed ones (and the
// leased ones for the purge of dead leased keys). It only adds keys that are
// not queued yet: a key queued meanwhile was queued by a change on this
// node, which is fresher than what the scan read.
func (b *apikeysBackend) rebuildSchedule(ctx context.Context, s logical.Storage) (int, error) {
	q := b.rotation().queue
	n := 0
	err := b.forEachKey(ctx, s, func(k *record.Key) (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if due := record.DueAt(k, b.clock.Now()); !due.IsZero() {
			if q.Offer(queueID(k.Client, k.Name), due) {
				n++
			}
		}
		// The same scan rebuilds the purge queue of leased keys
		// (lease_purge.go), so startup reads every key once, not twice.
		b.offerLeasedKey(k)
		return true, nil
	})
	return n, err
}

// rebuildDone is closed when the latest rebuild has finished.
func (r *rotationState) rebuildDone() <-chan struct{} {
	r.rebuildMu.Lock()
	defer r.rebuildMu.Unlock()
	return r.rebuilt
}

// waitRebuilt waits for the background rebuild (tests and benchmarks).
func (b *apikeysBackend) waitRebuilt(ctx context.Context) error {
	r := b.rotation()
	select {
	case <-r.rebuildDone():
		r.rebuildMu.Lock()
		defer r.rebuildMu.Unlock()
		return r.rebuildErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// scheduleRebuilding reports whether the startup scan is still running, so
// the queues do not yet hold every key.
func (b *apikeysBackend) scheduleRebuilding() bool {
	r := b.rotation()
	select {
	case <-r.rebuildDone():
		return false
	default:
		return r.rebuilding.Load()
	}
}

// tickStats counts what one tick did.
type tickStats struct {
	handled  int
	rotated  int
	retired  int
	expired  int
	deferred int
	failed   int
	leftover bool // stopped by the budget with due keys left
}

// rotationTick rotates due keys, retires ended grace periods and expires
// keys past their hard expiry.
func (b *apikeysBackend) rotationTick(ctx context.Context, req *logical.Request) error {
	b.retryFailedRebuild(req.Storage)
	_, err := b.runRotationTick(ctx, req.Storage)
	return err
}

func (b *apikeysBackend) runRotationTick(ctx context.Context, s logical.Storage) (tickStats, error) {
	r := b.rotation()
	var st tickStats
	var errs []error
	started := r.stopwatch()
	now := b.clock.Now()
	for {
		if st.handled >= r.maxKeys || r.stopwatch().Sub(started) >= r.budget || ctx.Err() != nil {
			if _, due, ok := r.queue.Peek(); ok && !due.After(now) {
				st.leftover = true
				b.logger.Warn("rotation tick budget used up; remaining due keys wait for the next tick", "handled", st.handled)
			}
			break
		}
		id, _, ok := r.queue.PopDue(now)
		if !ok {
			break
		}
		st.handled++
		client, name := splitQueueID(id)
		if err := b.handleDueKey(ctx, s, client, name, &st); err != nil {
			// handleDueKey has re-queued the key for a retry.
			st.failed++
			b.logger.Warn("scheduled key maintenance failed; will retry", "client", client, "key", name, "error", err)
			if len(errs) < 5 {
				errs = append(errs, fmt.Errorf("key %s/%s: %w", client, name, err))
			}
		}
	}
	if st.handled > 0 {
		b.logger.Info("rotation tick", "handled", st.handled, "rotated", st.rotated, "retired", st.retired,
			"expired", st.expired, "retirement_deferred", st.deferred, "failed", st.failed)
	}
	if st.failed > 0 {
		return st, fmt.Errorf("rotation: %d of %d due keys failed: %w", st.failed, st.handled, errors.Join(errs...))
	}
	return st, nil
}
