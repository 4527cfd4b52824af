package backend

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scheduler"
)

// The key schedules' due index in storage (issue #15), in the manner of
// retention_index.go. A runner's memory holds only what falls due within a
// horizon; everything else waits in storage as a pointer in a bucket named
// after the hour it is due in:
//
//	schedule/<runner>/<YYYY-MM-DDTHH>/<due, Unix ns>~<client>~<key name>
//
// so the mount's start, and every hour after it, lists the buckets it
// reaches instead of reading every key. A pointer is written before the key
// record that makes it due (keySchedules.plan, from the WAL-ordered commit,
// alongside its WAL and index entries so it costs no round trip of its own)
// and only when the due time changes, and each key record names the due
// time of its pointer (record.Key.RotationPointer, PurgePointer); the
// pointer is written in the bucket of its due time, or of the current hour
// if that is later, so it always lands after the cursor below. A crash
// between pointer and record leaves an extra pointer: the runner's work
// re-reads the record before it does anything (the queue may be stale or
// early, package scheduler) and queues the key at its true due time.
// Pointers left behind by a change of due time are stale in the same way
// and go when their bucket does.
//
// A stored cursor (schedule/<runner>/state) names the last bucket consumed.
// load lists the buckets after the last one loaded, up to the one after the
// horizon's (the rotation's horizon is now; the purge's, now less the
// retention) and offers their pointers to the runner, a bounded number of
// buckets per call; keySchedules.update keeps in memory only keys due up to
// the last bucket loaded. consume drops a bucket once it has ended at the
// horizon and nothing due before its end is queued any more (every key it
// pointed at was handled): a key still queued (re-queued for a retry) gets a
// pointer at its queued time first, then the bucket's pointers are deleted
// and the cursor moves past it. A restart, or another active node, goes on
// from the stored cursor: it loads what is overdue and what falls due
// within the horizon, never the whole mount.
//
// Keys stored before pointers existed get theirs once from a backfill
// (schedule_backfill.go).

const (
	storageSchedulePrefix = "schedule/"
	// scheduleBucketWidth is the span of one bucket; the horizon is the
	// current bucket and the next, so memory holds at most two hours of
	// work ahead.
	scheduleBucketWidth  = time.Hour
	scheduleBucketFormat = "2006-01-02T15"
	// scheduleLoadBuckets bounds the buckets one load lists: a mount that
	// was down for a month catches up in a few ticks' worth of listings.
	scheduleLoadBuckets = 48
	// scheduleConsumePointers bounds the pointers one consume deletes.
	scheduleConsumePointers = 5000
	// scheduleConsumeSlack keeps a bucket a while after it ended: a change
	// that read the clock just before the end may store its pointer in it
	// a moment later.
	scheduleConsumeSlack = 5 * time.Minute
	// scheduleQueuedPerPass: loading stops while a runner holds this many
	// items per item its pass may handle, so a large backlog is read from
	// storage as it is worked off, not all at once.
	scheduleQueuedPerPass = 4
)

// The Unix nanoseconds in a pointer's name cover 1970 to 2262; a due time
// outside is queued at the nearest end (a key due after 2262 waits there).
var (
	scheduleMinDue = time.Unix(0, 0).UTC()
	scheduleMaxDue = time.Unix(0, math.MaxInt64).UTC().Truncate(scheduleBucketWidth)
)

func clampScheduleDue(t time.Time) time.Time {
	switch {
	case t.Before(scheduleMinDue):
		return scheduleMinDue
	case t.After(scheduleMaxDue):
		return scheduleMaxDue
	}
	return t
}

// scheduleBucketOf is the start of the bucket that holds due time t.
func scheduleBucketOf(t time.Time) time.Time {
	return clampScheduleDue(t).UTC().Truncate(scheduleBucketWidth)
}

func scheduleBucketName(bucket time.Time) string { return bucket.UTC().Format(scheduleBucketFormat) }

// schedulePointerName names the pointer of queue id at due. Queue ids are
// "<client>/<name>" and names never contain "~" (record.NameRe).
func schedulePointerName(id string, due time.Time) string {
	return fmt.Sprintf("%019d~%s", clampScheduleDue(due).UnixNano(), strings.ReplaceAll(id, "/", "~"))
}

func parseSchedulePointer(name string) (id string, due time.Time, ok bool) {
	ns, rest, found := strings.Cut(name, "~")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !found || err != nil || rest == "" {
		return "", time.Time{}, false
	}
	return strings.ReplaceAll(rest, "~", "/"), time.Unix(0, n).UTC(), true
}

type dueIndexState struct {
	// Cursor is the last bucket consumed.
	Cursor string `json:"cursor"`
}

// dueIndex is the due index of one runner.
type dueIndex struct {
	name   string // the storage segment: "rotation", "purge"
	runner *scheduler.Runner
	// maxQueued stops loading while the runner holds that many items.
	maxQueued int

	// started: the state is read and loaded says what memory covers.
	// Before that (a backend whose mount has not started, as in unit
	// tests) memory keeps every key a change queues.
	started atomic.Bool
	// loaded is the start of the last bucket loaded (Unix seconds): keys
	// due up to its end are queued in memory, later ones wait in storage.
	loaded atomic.Int64

	// mu serialises start, load and consume; cursor is guarded by it.
	mu     sync.Mutex
	cursor time.Time
}

func newDueIndex(name string, runner *scheduler.Runner, limits scheduler.Limits) *dueIndex {
	return &dueIndex{name: name, runner: runner, maxQueued: scheduleQueuedPerPass * max(limits.MaxItems, 1)}
}

func (x *dueIndex) bucketPrefix(bucket time.Time) string {
	return storageSchedulePrefix + x.name + "/" + scheduleBucketName(bucket) + "/"
}

func (x *dueIndex) stateKey() string { return storageSchedulePrefix + x.name + "/state" }

func (x *dueIndex) loadedBucket() time.Time { return time.Unix(x.loaded.Load(), 0).UTC() }

// inMemory reports whether an item due at due belongs in the runner's
// memory rather than only in storage.
func (x *dueIndex) inMemory(due time.Time) bool {
	return !x.started.Load() || !scheduleBucketOf(due).After(x.loadedBucket())
}

// place queues id at due in memory if it is due within what is loaded,
// and drops it from memory otherwise (zero due: nothing to do). Its
// pointer is already stored.
func (x *dueIndex) place(id string, due time.Time) {
	if due.IsZero() || !x.inMemory(due) {
		x.runner.Remove(id)
		return
	}
	x.runner.Schedule(id, due)
}

// offer queues id at due in memory, if due within what is loaded, unless
// it is queued at or before due already (scheduler.Runner.Earlier: what
// offers comes from storage and may be stale, and early is harmless), and
// reports whether it did.
func (x *dueIndex) offer(id string, due time.Time) bool {
	return !due.IsZero() && x.inMemory(due) && x.runner.Earlier(id, due)
}

// put stores the pointer of id at due, in due's bucket or the current
// one, whichever is later (never one consumed already).
func (x *dueIndex) put(ctx context.Context, s logical.Storage, id string, due, now time.Time) error {
	bucket := scheduleBucketOf(due)
	if current := scheduleBucketOf(now); current.After(bucket) {
		bucket = current
	}
	entry := &logical.StorageEntry{Key: x.bucketPrefix(bucket) + schedulePointerName(id, due), Value: []byte("{}")}
	return putEntry(ctx, s, entry, x.name+" schedule pointer")
}

// start reads the stored cursor (or stores the first one: the hour before
// now, as every pointer is written in the current hour or later) and sets
// memory to cover nothing loaded yet. It is a no-op once started.
func (x *dueIndex) start(ctx context.Context, s logical.Storage, now time.Time) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.started.Load() {
		return nil
	}
	st, err := getJSON[dueIndexState](ctx, s, x.stateKey(), x.name+" schedule state")
	if err != nil {
		return err
	}
	if st == nil {
		st = &dueIndexState{Cursor: scheduleBucketName(scheduleBucketOf(now).Add(-scheduleBucketWidth))}
		if err := putJSON(ctx, s, x.stateKey(), x.name+" schedule state", st); err != nil {
			return err
		}
	}
	cursor, err := time.Parse(scheduleBucketFormat, st.Cursor)
	if err != nil {
		return fmt.Errorf("%s schedule cursor %q: %w", x.name, st.Cursor, err)
	}
	x.cursor = cursor.UTC()
	x.loaded.Store(x.cursor.Unix())
	x.started.Store(true)
	return nil
}

// load lists the buckets after the last one loaded, up to the bucket
// after the horizon's and at most scheduleLoadBuckets of them, and queues
// their pointers. It reports whether memory now covers the horizon; it
// stops early while the runner holds maxQueued items. A no-op before start.
func (x *dueIndex) load(ctx context.Context, s logical.Storage, horizon time.Time) (bool, error) {
	if !x.started.Load() {
		return false, nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	target := scheduleBucketOf(horizon).Add(scheduleBucketWidth)
	for listed := 0; listed < scheduleLoadBuckets; listed++ {
		last := x.loadedBucket()
		if !last.Before(target) {
			return true, nil
		}
		if x.runner.Len() >= x.maxQueued {
			return false, nil
		}
		next := last.Add(scheduleBucketWidth)
		// Memory covers the bucket before it is listed: a change that
		// misses the listing (its pointer written after it) queues its
		// key in memory itself (place), and one that sees the old bound
		// wrote its pointer before the listing.
		x.loaded.Store(next.Unix())
		names, err := s.List(ctx, x.bucketPrefix(next))
		if err != nil {
			x.loaded.Store(last.Unix())
			return false, err
		}
		for _, n := range names {
			if id, due, ok := parseSchedulePointer(n); ok {
				x.runner.Earlier(id, due)
			}
		}
	}
	return !x.loadedBucket().Before(target), nil
}

// consume drops the buckets after the cursor that have ended at horizon
// and whose keys were all handled (nothing due before the bucket's end is
// queued), within scheduleConsumePointers deleted pointers and
// scheduleLoadBuckets buckets, and stores the cursor past each. A key still queued gets a pointer at its queued time
// first (a retry lives only in memory), so dropping the bucket forgets
// nothing. The caller holds the runner's pass, so no pass pops or re-queues
// meanwhile. It returns how many buckets it consumed.
func (x *dueIndex) consume(ctx context.Context, s logical.Storage, horizon, now time.Time) (int, error) {
	if !x.started.Load() {
		return 0, nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	budget := scheduleConsumePointers
	consumed := 0
	for budget > 0 && consumed < scheduleLoadBuckets {
		next := x.cursor.Add(scheduleBucketWidth)
		end := next.Add(scheduleBucketWidth)
		if next.After(x.loadedBucket()) || end.After(horizon.Add(-scheduleConsumeSlack)) {
			return consumed, nil
		}
		if due, ok := x.runner.Earliest(); ok && due.Before(end) {
			return consumed, nil // some of its keys are still to be handled
		}
		names, err := s.List(ctx, x.bucketPrefix(next))
		if err != nil {
			return consumed, err
		}
		sort.Strings(names)
		for _, n := range names {
			if budget == 0 {
				return consumed, nil // the rest of this bucket waits for the next call
			}
			if id, _, ok := parseSchedulePointer(n); ok {
				if queued, ok := x.runner.Due(id); ok {
					if err := x.put(ctx, s, id, queued, now); err != nil {
						return consumed, err
					}
				}
			}
			if err := s.Delete(ctx, x.bucketPrefix(next)+n); err != nil {
				return consumed, err
			}
			budget--
		}
		if err := putJSON(ctx, s, x.stateKey(), x.name+" schedule state", dueIndexState{Cursor: scheduleBucketName(next)}); err != nil {
			return consumed, err
		}
		x.cursor = next
		consumed++
	}
	return consumed, nil
}
