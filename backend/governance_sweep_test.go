package backend

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"
)

// sweepBatchOf are backend options with a sweep batch of n keys (0: the
// default).
func sweepBatchOf(n int) backendOption {
	return withGovernance(governance.Options{SweepBatch: n})
}

// sweepEnv is a test env with storage that counts reads, n keys spread over
// three clients (client "b" has none) and a small sweep batch.
func sweepEnv(t *testing.T, batch int, perClient map[string]int) (*testEnv, *recordingStorage, []string) {
	t.Helper()
	e := newTestEnv(t, sweepBatchOf(batch))
	rs := newRecordingStorage(e.storage)
	e.storage = rs
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
	// 11 keys, batch 4: one pass in 3 ticks, each key once, in order; the
	// third tick goes on with the next pass's first key.
	if !reflect.DeepEqual(pass, append(all[:len(all):len(all)], all[0])) {
		t.Fatalf("ticks visited\n%v\nwant the pass then its first key\n%v", pass, all)
	}
	if read := sweepTick(e, rs); !reflect.DeepEqual(read, all[1:5]) {
		t.Fatalf("the next tick visited %v, want %v", read, all[1:5])
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
	if st := e.govState(); st.Sweep != (governance.Cursor{}) {
		t.Fatalf("cursor after whole passes = %+v", st.Sweep)
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
	e.clock.Advance(24*time.Hour + governance.OverdueTolerance + time.Minute)
	for tick, want := range []int{3, 6, 9, 10, 10, 10, 10, 10} {
		sweepTick(e, rs)
		if n := len(e.alertsOf(record.AlertRotationOverdue)); n != want {
			t.Fatalf("tick %d: %d overdue alerts, want %d", tick, n, want)
		}
	}
	// Rotating a key gives it a new due time: overdue again later is a
	// new alert, for that key only.
	e.ok(logical.UpdateOperation, "keys/a/k04/rotate", nil)
	e.clock.Advance(24*time.Hour + governance.OverdueTolerance + time.Minute)
	for i := 0; i < 8; i++ {
		sweepTick(e, rs)
	}
	if n := len(e.alertsOf(record.AlertRotationOverdue)); n != 11 {
		t.Fatalf("overdue alerts after a rotation = %d, want 11", n)
	}
	// 49h unused: every key is due for review, once.
	if n := len(e.alertsOf(record.AlertReviewDue)); n != 10 {
		t.Fatalf("review alerts = %d, want 10", n)
	}
}

// faultyStorage fails the operations fail names: fail gets "get" or "list"
// and the storage key or prefix, and returns the error to answer (nil: pass
// the operation through).
type faultyStorage struct {
	logical.Storage
	fail func(op, key string) error
}

func (f *faultyStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if err := f.fail("get", key); err != nil {
		return nil, err
	}
	return f.Storage.Get(ctx, key)
}

func (f *faultyStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if err := f.fail("list", prefix); err != nil {
		return nil, err
	}
	return f.Storage.List(ctx, prefix)
}

// idleSweepEnv is a test env with a sweep batch of batch keys (0: the
// default), client svc holding the named keys under a role with
// idle_timeout 1h, all of them idle for 2h, and the backend's warnings
// captured in the returned buffer.
func idleSweepEnv(t *testing.T, batch int, names ...string) (*testEnv, *bytes.Buffer) {
	t.Helper()
	e := newTestEnv(t, sweepBatchOf(batch))
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"idle_timeout": "1h"})
	for _, n := range names {
		e.issue("svc", n, "r", nil)
	}
	e.clock.Advance(2 * time.Hour)
	var logs bytes.Buffer
	e.b.logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
	return e, &logs
}

// revokedKeys reports which of the named keys of client svc are revoked.
func (e *testEnv) revokedKeys(names ...string) map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	for _, n := range names {
		k, err := e.b.getKey(e.ctx, e.storage, "svc", n)
		if err != nil {
			e.t.Fatal(err)
		}
		out[n] = k != nil && k.Revoked
	}
	return out
}

// A key the sweep cannot handle (an undecodable record, undecodable marks)
// is logged and skipped; the keys after it are swept in the same tick, and
// the tick does not fail. Once the entry is readable again the next pass
// handles the key.
func TestSweepSkipsKeysItCannotHandle(t *testing.T) {
	e, logs := idleSweepEnv(t, 0, "a", "b", "c")
	// a's record holds a retrievable secret and is cut off right after it:
	// the JSON error must not quote the entry.
	if err := e.storage.Put(e.ctx, &logical.StorageEntry{Key: keyStorageKey("svc", "a"), Value: []byte(`{"versions":[{"secret":"ak_prod_s3cr3t"Q`)}); err != nil {
		t.Fatal(err)
	}
	bID := e.issued("svc", "b").KeyID
	if err := e.storage.Put(e.ctx, &logical.StorageEntry{Key: governance.MarksKey(bID), Value: []byte("{")}); err != nil {
		t.Fatal(err)
	}
	e.tick()
	if got := e.revokedKeys("b", "c"); got["b"] || !got["c"] {
		t.Fatalf("after one tick: revoked %v; want c swept past the bad entries of a and b", got)
	}
	out := logs.String()
	for _, want := range []string{`client=svc key=a`, `client=svc key=b key_id=` + bID, "skipped until the next pass", "invalid JSON at byte offset"} {
		if !strings.Contains(out, want) {
			t.Fatalf("warnings lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "'Q'") || strings.Contains(out, "s3cr3t") {
		t.Fatalf("a warning quotes the stored entry:\n%s", out)
	}

	// b's marks are readable again (an operator removed the bad entry):
	// the next pass revokes it.
	if err := e.storage.Delete(e.ctx, governance.MarksKey(bID)); err != nil {
		t.Fatal(err)
	}
	e.tick()
	if got := e.revokedKeys("b"); !got["b"] {
		t.Fatal("b not swept in the pass after its marks became readable")
	}
}

// A transient error on one key skips it for the current pass only: the
// rest of the pass goes on, and the next pass handles the key.
func TestSweepRetriesKeyAfterTransientErrorNextPass(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	e, logs := idleSweepEnv(t, 2, names...)
	failures := 1
	e.storage = &faultyStorage{Storage: e.storage, fail: func(op, key string) error {
		if op == "get" && key == keyStorageKey("svc", "b") && failures > 0 {
			failures--
			return errors.New("transient: storage timeout")
		}
		return nil
	}}
	want := []map[string]bool{
		{"a": true, "b": false, "c": false, "d": false}, // b failed, skipped
		{"a": true, "b": false, "c": true, "d": true},   // the pass goes on
		{"a": true, "b": true, "c": true, "d": true},    // the next pass retries b
	}
	for i, w := range want {
		e.tick()
		if got := e.revokedKeys(names...); !reflect.DeepEqual(got, w) {
			t.Fatalf("tick %d: revoked %v, want %v", i+1, got, w)
		}
	}
	if n := strings.Count(logs.String(), "skipped until the next pass"); n != 1 {
		t.Fatalf("%d skip warnings, want 1:\n%s", n, logs.String())
	}
}

// A failed listing ends the tick with an error and skips nothing: the next
// tick sweeps from where the failed one started.
func TestSweepListingFailureEndsTickWithoutSkipping(t *testing.T) {
	e, _ := idleSweepEnv(t, 0, "a", "b")
	failures := 1
	e.storage = &faultyStorage{Storage: e.storage, fail: func(op, key string) error {
		if op == "list" && key == storageKeyPrefix+"svc/" && failures > 0 {
			failures--
			return errors.New("transient: leadership lost")
		}
		return nil
	}}
	if err := e.b.governanceTick(e.ctx, &logical.Request{Storage: e.storage}); err == nil || !strings.Contains(err.Error(), "leadership lost") {
		t.Fatalf("tick with a failed listing: %v", err)
	}
	if got := e.revokedKeys("a", "b"); got["a"] || got["b"] {
		t.Fatalf("revoked %v by a tick whose listing failed", got)
	}
	e.tick()
	if got := e.revokedKeys("a", "b"); !got["a"] || !got["b"] {
		t.Fatalf("after the listing recovered: revoked %v", got)
	}
}

// When the tick's context ends mid-sweep (the node stepping down), the
// sweep stops with an error before the key it was on instead of skipping
// it and every key after it.
func TestSweepStopsWhenContextEnds(t *testing.T) {
	e, _ := idleSweepEnv(t, 0, "a", "b", "c")
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	fs := &faultyStorage{Storage: e.storage, fail: func(op, key string) error {
		if op == "get" && key == keyStorageKey("svc", "b") {
			cancel()
			return ctx.Err()
		}
		return nil
	}}
	err := e.b.gov.Update(e.ctx, e.storage, func(st *governance.State) error {
		if err := e.b.sweepKeys(ctx, fs, st); !errors.Is(err, context.Canceled) {
			t.Fatalf("sweep with its context ended: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (governance.Cursor{Client: "svc", Key: "a"}); e.govState().Sweep != want {
		t.Fatalf("cursor %+v, want %+v (before the key the sweep was on)", e.govState().Sweep, want)
	}
}

func TestRedactDecodeError(t *testing.T) {
	var k record.Key
	err := json.Unmarshal([]byte(`{"versions":[{"secret":"ak_prod_x"Z}]}`), &k)
	got := redactDecodeError(fmt.Errorf("decoding key svc/a: %w", err))
	if got != "decoding key svc/a: invalid JSON at byte offset 35" {
		t.Fatalf("redacted: %q", got)
	}
	if got := redactDecodeError(errors.New("reading key: timeout")); got != "reading key: timeout" {
		t.Fatalf("other errors are kept: %q", got)
	}
}
