package backend

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

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
