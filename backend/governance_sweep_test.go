package backend

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// sweepEnv is a test env with storage that counts reads, n keys spread over
// three clients (client "b" has none) and a small sweep batch.
func sweepEnv(t *testing.T, batch int, perClient map[string]int) (*testEnv, *recordingStorage, []string) {
	t.Helper()
	e := newTestEnv(t)
	rs := newRecordingStorage(e.storage)
	e.storage = rs
	e.b.gov.sweepBatch = batch
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	var all []string
	for c, n := range perClient {
		e.ok(logical.CreateOperation, "clients/"+c, map[string]interface{}{"owner": "team", "type": "internal"})
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("k%02d", i)
			e.ok(logical.CreateOperation, "keys/"+c+"/"+name, map[string]interface{}{"role": "r"})
			all = append(all, keyStorageKey(c, name))
		}
	}
	sort.Strings(all)
	return e, rs, all
}

// sweepTick runs one governance tick and returns the keys it read, in order.
func sweepTick(e *testEnv, rs *recordingStorage) []string {
	e.t.Helper()
	rs.reset()
	e.tick()
	return rs.keysRead()
}

func TestSweepVisitsBoundedBatchesAndEveryKey(t *testing.T) {
	e, rs, all := sweepEnv(t, 4, map[string]int{"a": 5, "b": 0, "c": 6})
	var pass []string
	for tick := 1; tick <= 3; tick++ {
		read := sweepTick(e, rs)
		if len(read) > 4 {
			t.Fatalf("tick %d read %d keys, batch is 4: %v", tick, len(read), read)
		}
		if marks := rs.reads("governance/"); marks > 4+1 { // one mark per key, and the state
			t.Fatalf("tick %d made %d governance reads", tick, marks)
		}
		pass = append(pass, read...)
	}
	// 11 keys, batch 4: one pass in 3 ticks, each key once, in order.
	if !reflect.DeepEqual(pass, all) {
		t.Fatalf("pass visited\n%v\nwant\n%v", pass, all)
	}
	// The next tick starts a new pass.
	if read := sweepTick(e, rs); !reflect.DeepEqual(read, all[:4]) {
		t.Fatalf("second pass starts with %v, want %v", read, all[:4])
	}
}

func TestSweepPassEndingOnBatchBoundaryWrapsAtOnce(t *testing.T) {
	e, rs, all := sweepEnv(t, 4, map[string]int{"a": 4, "c": 4})
	if r1, r2 := sweepTick(e, rs), sweepTick(e, rs); !reflect.DeepEqual(append(r1, r2...), all) {
		t.Fatalf("first pass: %v %v", r1, r2)
	}
	// The previous tick stopped on the last key: this one does not idle.
	if read := sweepTick(e, rs); !reflect.DeepEqual(read, all[:4]) {
		t.Fatalf("tick after the pass read %v, want %v", read, all[:4])
	}
}

func TestSweepSmallMountWholeEveryTick(t *testing.T) {
	e, rs, all := sweepEnv(t, 0, map[string]int{"a": 3, "c": 2}) // default batch
	for i := 0; i < 3; i++ {
		if read := sweepTick(e, rs); !reflect.DeepEqual(read, all) {
			t.Fatalf("tick %d read %v, want every key", i, read)
		}
	}
	// A whole pass per tick leaves the cursor at the start: a tick with
	// nothing to record writes nothing.
	if w := rs.writes("governance/"); w != 0 {
		t.Fatalf("an idle tick wrote %d governance entries", w)
	}
	st, err := loadGovState(e.ctx, e.storage)
	if err != nil || !st.Sweep.atStart() {
		t.Fatalf("cursor after whole passes = %+v (%v)", st.Sweep, err)
	}
}

// The cursor is persisted: a new active node (here a new backend on the
// same storage) carries on where the previous one stopped.
func TestSweepResumesFromStoredCursor(t *testing.T) {
	e, rs, all := sweepEnv(t, 4, map[string]int{"a": 5, "c": 6})
	if read := sweepTick(e, rs); !reflect.DeepEqual(read, all[:4]) {
		t.Fatalf("first tick read %v", read)
	}
	b2 := newBackend(e.clock)
	if err := b2.Setup(context.Background(), &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: logical.TestSystemView(), StorageView: rs}); err != nil {
		t.Fatal(err)
	}
	b2.gov.sweepBatch = 4
	e.b = b2
	if read := sweepTick(e, rs); !reflect.DeepEqual(read, all[4:8]) {
		t.Fatalf("new node read %v, want %v", read, all[4:8])
	}
	// Keys changing under the cursor: the key at the cursor is gone from
	// storage, a client before the cursor gains a key. The walk carries
	// on after the cursor and the new key is visited in the next pass.
	if err := rs.Storage.Delete(e.ctx, all[7]); err != nil { // c/k02, the cursor
		t.Fatal(err)
	}
	e.ok(logical.CreateOperation, "keys/a/k99", map[string]interface{}{"role": "r"})
	e.b.gov.walker = keyWalker{} // as after a restart: re-list from the stored cursor
	if read := sweepTick(e, rs); !reflect.DeepEqual(read, all[8:]) {
		t.Fatalf("after changes read %v, want %v", read, all[8:])
	}
	next := sweepTick(e, rs)
	if len(next) != 4 || next[0] != keyStorageKey("a", "k00") {
		t.Fatalf("new pass read %v", next)
	}
	seen := map[string]bool{}
	for _, k := range append(next, append(sweepTick(e, rs), sweepTick(e, rs)...)...) {
		seen[k] = true
	}
	if !seen[keyStorageKey("a", "k99")] {
		t.Fatalf("key created during a pass not visited in the next one: %v", seen)
	}
}

// Review and overdue alerts arrive batch by batch, still once per key and
// cause across passes.
func TestSweepAlertsOncePerKeyAcrossBatches(t *testing.T) {
	e, rs, _ := sweepEnv(t, 3, nil)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"review_period": "48h"})
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"rotation_period": "24h", "grace_period": "1h"})
	e.ok(logical.CreateOperation, "clients/a", map[string]interface{}{"owner": "team", "type": "internal"})
	for i := 0; i < 10; i++ {
		e.ok(logical.CreateOperation, fmt.Sprintf("keys/a/k%02d", i), map[string]interface{}{"role": "r"})
	}
	e.clock.Advance(24*time.Hour + overdueTolerance + time.Minute)
	for tick, want := range []int{3, 6, 9, 10, 10, 10, 10, 10} {
		sweepTick(e, rs)
		if n := len(e.alertsOf(alertRotationOverdue)); n != want {
			t.Fatalf("tick %d: %d overdue alerts, want %d", tick, n, want)
		}
	}
	// Rotating a key gives it a new due time: overdue again later is a
	// new alert, for that key only.
	e.ok(logical.UpdateOperation, "keys/a/k04/rotate", nil)
	e.clock.Advance(24*time.Hour + overdueTolerance + time.Minute)
	for i := 0; i < 8; i++ {
		sweepTick(e, rs)
	}
	if n := len(e.alertsOf(alertRotationOverdue)); n != 11 {
		t.Fatalf("overdue alerts after a rotation = %d, want 11", n)
	}
	// 49h unused: every key is due for review, once.
	if n := len(e.alertsOf(alertReviewDue)); n != 10 {
		t.Fatalf("review alerts = %d, want 10", n)
	}
}
