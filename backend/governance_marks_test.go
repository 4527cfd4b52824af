package backend

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// oldGovState is governance/state as written before per-key marks: the
// marks were maps inside the one entry.
type oldGovState struct {
	LogSeq        uint64               `json:"log_seq"`
	Events        map[string]uint64    `json:"events"`
	Verify        map[string]uint64    `json:"verify"`
	DroppedAlerts uint64               `json:"dropped_alerts"`
	TTR           []float64            `json:"ttr"`
	OpenAlerts    map[string]time.Time `json:"open_alerts"`
	Review        map[string]time.Time `json:"review"`
	Overdue       map[string]time.Time `json:"overdue"`
}

func (e *testEnv) putRaw(key string, v interface{}) {
	e.t.Helper()
	entry, err := logical.StorageEntryJSON(key, v)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.storage.Put(e.ctx, entry); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) marksOf(keyID string) (keyMarks, bool) {
	e.t.Helper()
	entry, err := e.storage.Get(e.ctx, govMarksKey(keyID))
	if err != nil {
		e.t.Fatal(err)
	}
	var m keyMarks
	if entry == nil {
		return m, false
	}
	if err := entry.DecodeJSON(&m); err != nil {
		e.t.Fatal(err)
	}
	return m, true
}

func (e *testEnv) rawState() map[string]json.RawMessage {
	e.t.Helper()
	entry, err := e.storage.Get(e.ctx, storageGovState)
	if err != nil || entry == nil {
		e.t.Fatalf("governance state: %v %v", entry, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(entry.Value, &raw); err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// A mount upgraded with marks in the old single-entry format keeps them:
// keys the old code had alerted do not alert again, the time-to-revoke of
// an alert raised before the upgrade is still measured, and the first tick
// moves the marks to per-key entries.
func TestGovStateMigratesOldFormat(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"review_period": "48h"})
	e.setupClientRole("billing", "internal", "r", map[string]interface{}{"rotation_period": "24h", "grace_period": "1h"})
	for _, n := range []string{"a", "b", "c"} {
		e.ok(logical.CreateOperation, "keys/billing/"+n, map[string]interface{}{"role": "r"})
	}
	a, b, c := e.issued("billing", "a"), e.issued("billing", "b"), e.issued("billing", "c")
	alertedAt := testStart.Add(25*time.Hour + 30*time.Minute)
	reviewedAt := testStart.Add(48*time.Hour + 30*time.Minute)
	e.clock.Advance(49 * time.Hour)
	// The old code had alerted a and b (overdue, then review), not yet c.
	e.putRaw(storageGovState, oldGovState{
		Events: map[string]uint64{}, Verify: map[string]uint64{"active": 7}, TTR: []float64{12},
		OpenAlerts: map[string]time.Time{a.KeyID: alertedAt, b.KeyID: alertedAt},
		Review:     map[string]time.Time{a.KeyID: reviewedAt, b.KeyID: reviewedAt},
		Overdue:    map[string]time.Time{a.KeyID: a.NextRotationAt, b.KeyID: b.NextRotationAt},
	})

	// Reading metrics before the first tick reads the old format and
	// writes nothing.
	before := e.storageKeys()
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	if m["verify_outcomes"].(map[string]uint64)["active"] != 7 || m["time_to_revoke"].(map[string]interface{})["count"] != 1 {
		t.Fatalf("metrics over the old format: %v", m)
	}
	if after := e.storageKeys(); !reflect.DeepEqual(before, after) {
		t.Fatalf("reading metrics wrote storage: %v -> %v", before, after)
	}

	e.tick()
	for _, typ := range []string{record.AlertRotationOverdue, record.AlertReviewDue} {
		got := e.alertsOf(typ)
		if len(got) != 1 || got[0].KeyID != c.KeyID {
			t.Fatalf("%s alerts after the upgrade: %+v (want one, for c only)", typ, got)
		}
	}
	raw := e.rawState()
	for _, old := range []string{"open_alerts", "review", "overdue"} {
		if _, ok := raw[old]; ok {
			t.Fatalf("migrated state still holds %q: %s", old, raw[old])
		}
	}
	if string(raw["ttr"]) != "[12]" || !strings.Contains(string(raw["verify"]), `"active":7`) {
		t.Fatalf("counters lost in the migration: %v", raw)
	}
	got, ok := e.marksOf(a.KeyID)
	want := keyMarks{Review: reviewedAt, Overdue: a.NextRotationAt, Alerted: alertedAt}
	if !ok || !got.equal(want) {
		t.Fatalf("marks of a = %+v (stored %v), want %+v", got, ok, want)
	}
	if got, _ := e.marksOf(c.KeyID); got.Review.IsZero() || !got.Overdue.Equal(c.NextRotationAt) || got.Alerted.IsZero() {
		t.Fatalf("marks of c after its alerts = %+v", got)
	}

	// The alert raised before the upgrade still gives a time-to-revoke.
	e.clock.Advance(time.Hour)
	e.ok(logical.UpdateOperation, "keys/billing/a/revoke", nil)
	ttr := e.ok(logical.ReadOperation, "metrics", nil).Data["time_to_revoke"].(map[string]interface{})
	if ttr["count"] != 2 || ttr["p95_seconds"] != e.clock.Now().Sub(alertedAt).Seconds() {
		t.Fatalf("time_to_revoke after the upgrade = %v", ttr)
	}
	e.tick()
	e.tick()
	if n := len(e.alertsOf(record.AlertRotationOverdue)) + len(e.alertsOf(record.AlertReviewDue)); n != 2 {
		t.Fatalf("alerts after more ticks = %d, want still 2", n)
	}
	// A revoked key has no marks left.
	if got, ok := e.marksOf(a.KeyID); ok {
		t.Fatalf("revoked key keeps marks %+v", got)
	}
}

// An interrupted migration (per-key entries partly written, the state
// still old) is migrated again from the old maps without loss.
func TestGovStateMigrationIsRepeatable(t *testing.T) {
	e := newTestEnv(t)
	at := testStart.Add(-time.Hour)
	e.putRaw(storageGovState, oldGovState{Review: map[string]time.Time{"kid_1": at, "kid_2": at}})
	e.putRaw(govMarksKey("kid_1"), keyMarks{Review: at})
	e.tick()
	for _, id := range []string{"kid_1", "kid_2"} {
		if got, ok := e.marksOf(id); !ok || !got.Review.Equal(at) {
			t.Fatalf("marks of %s = %+v (stored %v)", id, got, ok)
		}
	}
	if _, ok := e.rawState()["review"]; ok {
		t.Fatal("old maps left in the state")
	}
}

// Review flags a key once until it is used again; stale again, it alerts
// again.
func TestReviewAlertsAgainAfterUse(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"review_period": "48h"})
	e.setupClientRole("billing", "internal", "r", nil)
	key := e.issue("billing", "k", "r", nil)
	id := e.issued("billing", "k").KeyID
	e.clock.Advance(48 * time.Hour)
	e.tick()
	e.tick()
	if n := len(e.alertsOf(record.AlertReviewDue)); n != 1 {
		t.Fatalf("review alerts = %d, want 1", n)
	}
	if code := e.verifyCode(key, nil); code != "" {
		t.Fatalf("verify: %s", code)
	}
	e.tick()
	if m, _ := e.marksOf(id); !m.Review.IsZero() {
		t.Fatalf("review mark kept after use: %+v", m)
	}
	e.clock.Advance(48 * time.Hour)
	e.tick()
	e.tick()
	if n := len(e.alertsOf(record.AlertReviewDue)); n != 2 {
		t.Fatalf("review alerts after use and 48h more = %d, want 2", n)
	}
}

// An alert no revocation followed for openAlertMaxAge leaves time-to-revoke
// tracking: the sweep drops the mark (and its entry with its last mark),
// and a revocation folded before the sweep got there gives no sample.
func TestAlertedMarkExpires(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"review_period": "8760h"}) // no review alert meanwhile
	e.setupClientRole("billing", "internal", "r", nil)
	var keys []*record.Key
	for _, n := range []string{"k1", "k2"} {
		e.ok(logical.CreateOperation, "keys/billing/"+n, map[string]interface{}{"role": "r"})
		k := e.issued("billing", n)
		if err := e.b.raiseAlert(e.ctx, e.storage, keyAlertFor(k, record.AlertNewAddress, record.SeverityWarning, "test", nil)); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	e.tick()
	for _, k := range keys {
		if m, ok := e.marksOf(k.KeyID); !ok || !m.Alerted.Equal(testStart) {
			t.Fatalf("alerted mark of %s = %+v (stored %v)", k.Name, m, ok)
		}
	}
	e.clock.Advance(openAlertMaxAge + time.Minute)
	ttrCount := func() interface{} {
		return e.ok(logical.ReadOperation, "metrics", nil).Data["time_to_revoke"].(map[string]interface{})["count"]
	}
	e.ok(logical.UpdateOperation, "keys/billing/k2/revoke", nil) // before any sweep
	if n := ttrCount(); n != 0 {
		t.Fatalf("time_to_revoke samples = %v after revoking past the max age, want none", n)
	}
	e.tick()
	for _, k := range keys {
		if m, ok := e.marksOf(k.KeyID); ok {
			t.Fatalf("expired alerted mark of %s kept: %+v", k.Name, m)
		}
	}
	e.ok(logical.UpdateOperation, "keys/billing/k1/revoke", nil)
	if n := ttrCount(); n != 0 {
		t.Fatalf("time_to_revoke samples = %v, want none", n)
	}
}

// governance/state holds only bounded fields: filled to its worst case it
// stays far below the storage's entry limit.
func TestGovStateEntryBounded(t *testing.T) {
	st := &govState{Events: map[string]uint64{}, Verify: map[string]uint64{}}
	for i := 0; i < 100; i++ { // more types and outcomes than exist
		st.Events[fmt.Sprintf("event.type.with.a.long.name.%03d", i)] = 1<<64 - 1
		st.Verify[fmt.Sprintf("outcome_with_a_long_name_%03d", i)] = 1<<64 - 1
	}
	for i := 0; i < 2*maxTTRSamples; i++ {
		st.addTTR(123456789.123456789 + float64(i)/7)
	}
	long := strings.Repeat("x", 64) // the longest client or key name
	st.Sweep = sweepCursor{Client: long, Key: long}
	st.DroppedAlerts, st.LogSeq = 1<<64-1, 1<<64-1
	entry, err := logical.StorageEntryJSON(storageGovState, st)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(entry.Value); n > 64<<10 {
		t.Fatalf("worst-case governance/state is %d bytes, want under 64 KiB", n)
	}
	t.Logf("worst-case governance/state: %d bytes", len(entry.Value))
}
