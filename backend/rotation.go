package backend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Scheduled rotation (SPEC §4). A scheduler.Runner holds, for the managed
// keys due within the next hour or two, when each next needs attention
// (record.DueAt); later ones wait as pointers in the due index in storage
// (schedule_index.go). keySchedules keeps both current after every key
// change and loads the index when the mount starts (schedules.go);
// rotationTick (from the PeriodicFunc, about once a minute, only where this
// node may write) loads the next hour's bucket as time reaches it, pops
// what is due and drops the buckets it is done with, so a tick costs
// O(due), not O(keys).

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
)

// rotationState is the engine's per-mount state; newBackend builds it.
type rotationState struct {
	// adoption returns when a version was last verified (zero: never):
	// the usage tracker's VersionLastVerified unless a test's option fakes it.
	adoption func(k *record.Key, version int) time.Time

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
// keys past their hard expiry. It first starts the load of the schedules,
// if the mount started where this node could not write, or starts it again
// if it failed (say a transient storage error at startup): otherwise the
// keys it did not queue would not rotate, and dead leased keys not be
// purged, until a restart.
func (b *apikeysBackend) rotationTick(ctx context.Context, req *logical.Request) error {
	s := req.Storage
	if b.sched.startAtTick.CompareAndSwap(true, false) {
		b.sched.rebuild.Start(func(ctx context.Context) error { return b.loadSchedules(ctx, s) })
	}
	if err := b.sched.rebuild.Retry(func(ctx context.Context) error { return b.loadSchedules(ctx, s) }); err != nil {
		b.logger.Warn("retrying the load of the key schedules after a failure", "error", err)
	}
	_, err := b.runRotationTick(ctx, s)
	return err
}

func (b *apikeysBackend) runRotationTick(ctx context.Context, s logical.Storage) (tickStats, error) {
	var st tickStats
	var errs []error
	pass := b.sched.rotation.Begin()
	defer pass.End()
	now := b.clock.Now()
	if _, err := b.sched.rotationIndex.load(ctx, s, now); err != nil {
		// What is queued is still handled; the next tick loads again.
		errs = append(errs, fmt.Errorf("loading the rotation schedule: %w", err))
	}
	res, _ := pass.Run(ctx, now, 0, func() error {
		it, ok := pass.Next()
		if !ok {
			return nil
		}
		client, name := splitQueueID(it.ID)
		if err := b.handleDueKey(ctx, s, client, name, &st); err != nil {
			// handleDueKey has re-queued the key for a retry.
			st.failed++
			b.logger.Warn("scheduled key maintenance failed; will retry", "client", client, "key", name, "error", err)
			if len(errs) < 5 {
				errs = append(errs, fmt.Errorf("key %s/%s: %w", client, name, err))
			}
		}
		return nil
	})
	st.handled, st.leftover = res.Handled, res.Leftover
	if st.leftover {
		b.logger.Warn("rotation tick budget used up; remaining due keys wait for the next tick", "handled", st.handled)
	}
	if st.handled > 0 {
		b.logger.Info("rotation tick", "handled", st.handled, "rotated", st.rotated, "retired", st.retired,
			"expired", st.expired, "retirement_deferred", st.deferred, "failed", st.failed)
	}
	if _, err := b.sched.rotationIndex.consume(ctx, s, now, now); err != nil {
		errs = append(errs, fmt.Errorf("dropping handled rotation schedule buckets: %w", err))
	}
	if st.failed > 0 {
		return st, fmt.Errorf("rotation: %d of %d due keys failed: %w", st.failed, st.handled, errors.Join(errs...))
	}
	if len(errs) > 0 {
		return st, errors.Join(errs...)
	}
	return st, nil
}
