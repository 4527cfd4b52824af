package usage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// persistNothing stands for a key record that is gone: nothing is written.
func persistNothing(Snapshot) error { return nil }

// A flush stops at its time budget; the rest, oldest first, is flushed by
// the next one.
func TestUsageFlushTimeBudget(t *testing.T) {
	u := NewTracker()
	var calls int
	u.flushLimits = flushLimits{budget: time.Second, stopwatch: func() time.Time {
		// The start, the first chunk's check and one check per write of
		// that chunk take no time; then the budget is spent.
		calls++
		if calls > flushChunk+2 {
			return testStart.Add(2 * time.Second)
		}
		return testStart
	}}
	n := flushChunk + 100
	for i := 0; i < n; i++ {
		u.Record(loadKey(i), 1, record.OutcomeActive, "", testStart)
	}
	ctx := context.Background()
	if err := u.Flush(ctx, persistNothing); err != nil {
		t.Fatal(err)
	}
	if got := u.Backlog(); got != 100 {
		t.Fatalf("backlog after a budget-limited flush = %d, want 100", got)
	}
	if _, ok := u.entries[loadKey(0).KeyID]; ok {
		t.Fatal("the oldest key was not flushed first")
	}
	calls = 0
	if err := u.Flush(ctx, persistNothing); err != nil {
		t.Fatal(err)
	}
	if got := u.Backlog(); got != 0 {
		t.Fatalf("backlog after the next flush = %d", got)
	}
}

// On slow storage a flush stops within its budget, checking it before each
// key rather than once per chunk of 500.
func TestUsageFlushBudgetCheckedPerWrite(t *testing.T) {
	u := NewTracker()
	var now time.Duration
	u.flushLimits = flushLimits{budget: 20 * time.Second, stopwatch: func() time.Time { return testStart.Add(now) }}
	for i := 0; i < flushChunk; i++ {
		u.Record(loadKey(i), 1, record.OutcomeActive, "", testStart)
	}
	slow := func(Snapshot) error { now += 100 * time.Millisecond; return nil }
	if err := u.Flush(context.Background(), slow); err != nil {
		t.Fatal(err)
	}
	if now > 21*time.Second {
		t.Fatalf("flush spent %s of storage time, budget 20s", now)
	}
	if now < 19*time.Second {
		t.Fatalf("flush stopped after %s of storage time, well before its 20s budget", now)
	}
	if got := u.Backlog(); got == 0 {
		t.Fatal("a flush over slow storage wrote everything past its budget")
	}
}

// Records that arrive while their snapshot is being persisted stay
// buffered, with only the counts the snapshot did not carry; a failed
// write keeps the whole entry for the next flush, and repeated failures
// end the flush.
func TestFlushKeepsWhatItDidNotPersist(t *testing.T) {
	u := NewTracker()
	k := loadKey(0)
	u.Record(k, 1, record.OutcomeActive, "", testStart)
	u.Record(k, 1, record.OutcomeActive, "", testStart)
	var persisted []Snapshot
	err := u.Flush(context.Background(), func(sn Snapshot) error {
		u.Record(k, 1, record.OutcomeActive, "", testStart.Add(time.Second))
		persisted = append(persisted, sn)
		return nil
	})
	if err != nil || len(persisted) != 1 || persisted[0].entry.counts[record.OutcomeIndex(record.OutcomeActive)] != 2 {
		t.Fatalf("persisted %+v, error %v", persisted, err)
	}
	if e := u.entries[k.KeyID]; e == nil || e.counts[record.OutcomeIndex(record.OutcomeActive)] != 1 || e.lastUsed != testStart.Add(time.Second).UnixNano() {
		t.Fatalf("entry after the flush: %+v", e)
	}
	if got := u.Backlog(); got != 1 {
		t.Fatalf("backlog %d, want the changed entry queued again", got)
	}

	for i := 1; i < 2*maxFlushErrors; i++ {
		u.Record(loadKey(i), 1, record.OutcomeActive, "", testStart)
	}
	var tries int
	err = u.Flush(context.Background(), func(Snapshot) error { tries++; return errors.New("storage down") })
	if err == nil || tries != maxFlushErrors {
		t.Fatalf("%d writes tried, error %v; want the flush to stop after %d failures", tries, err, maxFlushErrors)
	}
	if entries, _, queued := u.Buffered(); entries != 2*maxFlushErrors || queued != entries {
		t.Fatalf("%d entries, %d queued after failed writes; want all kept and queued", entries, queued)
	}
}
