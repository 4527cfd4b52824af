package backend

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Retention of records that only grow and whose ids say nothing of their
// age (approval requests: request_retention.go; archived keys:
// archive_retention.go). Finding the records past their retention must not
// cost a listing of all of them on every tick (on Raft a LIST reads every
// entry beneath the prefix), so each record gets a pointer, written before
// the record itself, in a bucket named after a UTC day no later than the
// day its retention starts counting:
//
//	retention/<kind>/<YYYY-MM-DD>/<id>
//
// A cursor (retention/<kind>/state) names the last day whose bucket was
// emptied. A pass walks the days after it that ended at least the retention
// ago: it lists one bucket (the pointers of one day's records, never the
// mount's), re-reads each record, deletes those past their retention
// (logging them first), drops the pointers of records already gone, and
// moves a pointer whose record is not due yet (a retention made longer
// meanwhile) to a later bucket. The cursor moves past a day only once its
// bucket is empty, and is stored, so a restart or a new active node goes on
// from there. A pass is bounded by retentionBatch records and
// retentionDaysPerPass bucket listings; a pass that finds nothing due reads
// one small state entry.
//
// Pointers are written at or after the day their record's retention
// starts, and that day is never before today, while the cursor never
// passes the day before today minus the retention: a new pointer always
// lands after the cursor. (The cursor starts a month before the first
// pass, for pointers written before it.) A crash between a pointer and its record leaves a
// pointer to nothing, which the pass drops.
//
// Records stored before the pointers existed get theirs from a one-time
// backfill (bounded steps, in today's bucket, so they are kept at least a
// retention from the upgrade).

const (
	storageRetentionPrefix = "retention/"
	// retentionDayFormat names a bucket; it sorts by time.
	retentionDayFormat = "2006-01-02"
	// retentionBatch bounds the records one pass of one kind examines.
	retentionBatch = 500
	// retentionDaysPerPass bounds the buckets one pass lists; a mount
	// that was down for months catches up a month per tick.
	retentionDaysPerPass = 31
	// retentionBackfillBudget bounds the pointers one backfill step
	// writes.
	retentionBackfillBudget = 2000
	// retentionEventMax is how many ids one pruned entry names, as
	// keys.purged does.
	retentionEventMax = 100
)

// retentionKind is one kind of record under retention.
type retentionKind struct {
	name string // the pointers' storage segment, e.g. "requests"
	// recordPrefix is where the records are, for the backfill.
	recordPrefix string
	// setting is the config field that tunes it, for logs.
	setting   string
	retention func(*record.Config) time.Duration
	// examine re-reads the records of ids (at most retentionBatch) and
	// deletes those due at now under the retention, logging them first.
	// It reports the ids whose record is gone now (deleted or never
	// stored) and, for each record kept, the time its retention counts
	// from, so the pointer moves to that day's bucket.
	examine func(ctx context.Context, s logical.Storage, ids []string, now time.Time, retention time.Duration) (gone []string, kept map[string]time.Time, err error)
}

type retentionState struct {
	// Cursor is the last day whose bucket was emptied.
	Cursor string `json:"cursor"`
	// Backfilled: every record stored before the pointers existed has
	// one; BackfillAfter is the last record id the backfill handled.
	Backfilled    bool   `json:"backfilled"`
	BackfillAfter string `json:"backfill_after,omitempty"`
}

// retentionStats is what one pass of one kind did.
type retentionStats struct {
	examined, pruned, moved int
	listed                  int // buckets listed
}

func retentionDay(t time.Time) string { return t.UTC().Format(retentionDayFormat) }

func retentionBucket(kind, day string) string {
	return storageRetentionPrefix + kind + "/" + day + "/"
}

func retentionStateKey(kind string) string { return storageRetentionPrefix + kind + "/state" }

// putRetentionPointer stores the pointer of record id in the bucket of the
// day of from, or of today if that is later (see above).
func (b *apikeysBackend) putRetentionPointer(ctx context.Context, s logical.Storage, kind, id string, from time.Time) error {
	day := retentionDay(from)
	if today := retentionDay(b.clock.Now()); day < today {
		day = today
	}
	return putEntry(ctx, s, &logical.StorageEntry{Key: retentionBucket(kind, day) + id, Value: []byte("{}")}, kind+" retention pointer")
}

// retentionKinds are the kinds the periodic function prunes.
func (b *apikeysBackend) retentionKinds() []retentionKind {
	return []retentionKind{b.requestRetention(), b.archiveRetention()}
}

// retentionTick runs one pass of every kind.
func (b *apikeysBackend) retentionTick(ctx context.Context, req *logical.Request) error {
	var errs []error
	for _, k := range b.retentionKinds() {
		if _, err := b.retentionPass(ctx, req.Storage, k); err != nil {
			errs = append(errs, fmt.Errorf("%s retention: %w", k.name, err))
		}
	}
	return errors.Join(errs...)
}

// retentionPass runs the backfill's next step if it has not ended, then
// prunes what is due, within the pass's bounds.
func (b *apikeysBackend) retentionPass(ctx context.Context, s logical.Storage, k retentionKind) (retentionStats, error) {
	var stats retentionStats
	now := b.clock.Now()
	st, err := getJSON[retentionState](ctx, s, retentionStateKey(k.name), k.name+" retention state")
	if err != nil {
		return stats, err
	}
	if st == nil {
		// Pointers are written on or after the day they are written, and
		// the first pass runs a minute after the mount starts; starting a
		// month back covers pointers written well before it, at the cost
		// of a month of empty bucket listings once.
		st = &retentionState{Cursor: retentionDay(now.Add(-retentionDaysPerPass * record.Day))}
		if err := b.putRetentionState(ctx, s, k, st); err != nil {
			return stats, err
		}
	}
	if !st.Backfilled {
		if err := b.retentionBackfillStep(ctx, s, k, st); err != nil {
			return stats, err
		}
	}
	cfg, err := b.config(ctx, s)
	if err != nil {
		return stats, err
	}
	retention := k.retention(cfg)
	if retention <= 0 {
		return stats, nil // kept forever
	}
	// A day is due once it ended at least the retention ago.
	lastDue := retentionDay(now.Add(-retention).Add(-record.Day))
	budget := b.retentionBatchSize()
	for st.Cursor < lastDue && budget > 0 && stats.listed < retentionDaysPerPass {
		day, err := nextRetentionDay(st.Cursor)
		if err != nil {
			return stats, err
		}
		ids, err := s.List(ctx, retentionBucket(k.name, day))
		if err != nil {
			return stats, err
		}
		stats.listed++
		sort.Strings(ids)
		take := ids[:min(len(ids), budget)]
		budget -= len(take)
		if len(take) > 0 {
			if err := b.retentionExamine(ctx, s, k, day, take, now, retention, &stats); err != nil {
				return stats, err
			}
		}
		if len(take) < len(ids) {
			break // the rest of this day waits for the next pass
		}
		st.Cursor = day
		if err := b.putRetentionState(ctx, s, k, st); err != nil {
			return stats, err
		}
	}
	if stats.pruned > 0 {
		b.logger.Info("pruned records past their retention", "kind", k.name, "pruned", stats.pruned, k.setting, retention.String())
	}
	return stats, nil
}

// retentionExamine hands the records of one bucket's ids to the kind and
// then deletes or moves their pointers.
func (b *apikeysBackend) retentionExamine(ctx context.Context, s logical.Storage, k retentionKind, day string, ids []string, now time.Time, retention time.Duration, stats *retentionStats) error {
	stats.examined += len(ids)
	gone, kept, err := k.examine(ctx, s, ids, now, retention)
	if err != nil {
		return err
	}
	stats.pruned += len(gone)
	stats.moved += len(kept)
	for id, from := range kept {
		if err := b.putRetentionPointer(ctx, s, k.name, id, from); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if _, ok := kept[id]; ok {
			// Kept: moved to a later bucket (its day or today, both after
			// this one), so this pointer goes.
			if err := s.Delete(ctx, retentionBucket(k.name, day)+id); err != nil {
				return err
			}
			continue
		}
		if !containsString(gone, id) {
			continue // neither gone nor kept: left for the next pass
		}
		if err := s.Delete(ctx, retentionBucket(k.name, day)+id); err != nil {
			return err
		}
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func nextRetentionDay(day string) (string, error) {
	t, err := time.Parse(retentionDayFormat, day)
	if err != nil {
		return "", fmt.Errorf("retention cursor %q: %w", day, err)
	}
	return t.Add(record.Day).Format(retentionDayFormat), nil
}

func (b *apikeysBackend) putRetentionState(ctx context.Context, s logical.Storage, k retentionKind, st *retentionState) error {
	return putJSON(ctx, s, retentionStateKey(k.name), k.name+" retention state", st)
}

// retentionBackfillStep writes the pointers of the next records stored
// before pointers existed, in today's bucket, and saves how far it got.
// It lists the records' prefix (once per step, only until it ends).
func (b *apikeysBackend) retentionBackfillStep(ctx context.Context, s logical.Storage, k retentionKind, st *retentionState) error {
	ids, err := s.List(ctx, k.recordPrefix)
	if err != nil {
		return err
	}
	ids = trimSorted(ids)
	from := sort.SearchStrings(ids, st.BackfillAfter)
	if from < len(ids) && ids[from] == st.BackfillAfter {
		from++
	}
	rest := ids[from:]
	n := min(len(rest), retentionBackfillBudget)
	now := b.clock.Now()
	for _, id := range rest[:n] {
		if err := b.putRetentionPointer(ctx, s, k.name, id, now); err != nil {
			return err
		}
	}
	if n > 0 {
		st.BackfillAfter = rest[n-1]
	}
	st.Backfilled = n == len(rest)
	if st.Backfilled {
		st.BackfillAfter = ""
	}
	return b.putRetentionState(ctx, s, k, st)
}

func (b *apikeysBackend) retentionBatchSize() int {
	if b.retentionBatch > 0 {
		return b.retentionBatch
	}
	return retentionBatch
}
