package backend

import (
	"context"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Keys stored before the schedules' due index existed (schedule_index.go)
// have no pointers: once in the life of a mount, the load at its start walks
// every key in bounded steps (backfill.go: the cursor and the end are stored,
// so a restart goes on where the last one stopped) and writes the pointers
// each key lacks, queueing in memory the keys due within the horizon as it
// goes. A fresh mount ends it at the first step, which finds no clients.
const (
	storageScheduleBackfill = storageSchedulePrefix + "backfill"
	// scheduleBackfillBudget bounds the key records one step reads.
	scheduleBackfillBudget = 2000
)

func (b *apikeysBackend) scheduleBackfill() backfill {
	return backfill{storageKey: storageScheduleBackfill, what: "schedule backfill", done: &b.sched.backfilled, step: b.scheduleBackfillStep}
}

// runScheduleBackfill runs the backfill's steps until it has ended.
func (b *apikeysBackend) runScheduleBackfill(ctx context.Context, s logical.Storage) error {
	f := b.scheduleBackfill()
	for {
		done, err := f.finished(ctx, s)
		if err != nil || done {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f.tick(ctx, s, b.logger); err != nil {
			return err
		}
	}
}

func (b *apikeysBackend) scheduleBackfillStep(ctx context.Context, s logical.Storage, cursor string) (string, int, error) {
	now := b.clock.Now()
	written := 0
	w := keyWalk{After: cursor, Budget: scheduleBackfillBudget}
	next, err := w.step(ctx, b, s, func(k *record.Key) (bool, error) {
		n, err := b.sched.backfillKey(ctx, s, k, now)
		written += n
		return true, err
	})
	return next, written, err
}

// backfillKey writes the pointers of key k and offers it to the runners.
// It writes them even where k's record notes one: that one may sit in a
// bucket before the cursor, which started at the first start's hour. It
// does not take the key's lock: a change meanwhile writes its own pointer,
// so the worst a race leaves is an extra pointer, which is harmless. It
// returns the pointers it wrote.
func (ks *keySchedules) backfillKey(ctx context.Context, s logical.Storage, k *record.Key, now time.Time) (int, error) {
	id := queueID(k.Client, k.Name)
	written := 0
	for _, p := range ks.pointersOf(k, now) {
		if p.due.IsZero() {
			continue
		}
		if err := p.index.put(ctx, s, id, p.due, now); err != nil {
			return written, err
		}
		written++
		p.index.offer(id, p.due)
	}
	return written, nil
}
