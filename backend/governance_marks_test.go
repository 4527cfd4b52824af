package backend

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
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

func (e *testEnv) marksOf(keyID string) (governance.Marks, bool) {
	e.t.Helper()
	entry, err := e.storage.Get(e.ctx, governance.MarksKey(keyID))
	if err != nil {
		e.t.Fatal(err)
	}
	var m governance.Marks
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
	entry, err := e.storage.Get(e.ctx, governance.StateKey)
	if err != nil || entry == nil {
		e.t.Fatalf("governance state: %v %v", entry, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(entry.Value, &raw); err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// govState is the governance state as a metrics read sees it.
func (e *testEnv) govState() *governance.State {
	e.t.Helper()
	st, err := e.b.gov.Snapshot(e.ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
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

// An alert no revocation followed for OpenAlertMaxAge leaves time-to-revoke
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
	e.clock.Advance(governance.OpenAlertMaxAge + time.Minute)
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
