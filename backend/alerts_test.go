package backend

import (
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/detect"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func (e *testEnv) tick() {
	e.t.Helper()
	if err := e.b.governanceTick(e.ctx, &logical.Request{Storage: e.storage}); err != nil {
		e.t.Fatalf("governanceTick: %v", err)
	}
}

// alertsOf returns the stored alerts of one type, newest first.
func (e *testEnv) alertsOf(typ string) []*record.Alert {
	e.t.Helper()
	list, err := listAlerts(e.ctx, e.storage, record.AlertFilter{Typ: typ}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return list
}

func (e *testEnv) issued(client, name string) *record.Key {
	e.t.Helper()
	k, err := e.b.getKey(e.ctx, e.storage, client, name)
	if err != nil || k == nil {
		e.t.Fatalf("key %s/%s: %v", client, name, err)
	}
	return k
}

func TestFailedVerifyBurstThreshold(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"failed_verify_threshold": 3, "alert_window": "1m"})
	fail := func(n int, ip string) {
		for i := 0; i < n; i++ {
			e.b.onVerify(record.VerifyInput{ClientIP: ip}, record.VerifyResult{Code: record.CodeNotFound})
		}
	}
	fail(3, "203.0.113.9")
	e.tick()
	if got := e.alertsOf(record.AlertFailedVerifyBurst); len(got) != 0 {
		t.Fatalf("alert at the threshold: %v", got)
	}
	// The window restarts after a minute: 3 more in a new window are fine.
	e.clock.Advance(61 * time.Second)
	fail(3, "203.0.113.9")
	if got := e.alertsOf(record.AlertFailedVerifyBurst); len(got) != 0 {
		t.Fatalf("alert across windows: %v", got)
	}
	// Above the threshold within one window: one alert, counting them all.
	fail(2, "198.51.100.7")
	fail(1, "203.0.113.9")
	resp := e.ok(logical.ListOperation, "alerts/", nil) // listing flushes what verify saw
	if keys := resp.Data["keys"].([]string); len(keys) != 1 {
		t.Fatalf("alerts listed: %v", keys)
	}
	got := e.alertsOf(record.AlertFailedVerifyBurst)
	if len(got) != 1 || got[0].Count != 6 || got[0].Details["sources"] != "203.0.113.9=4,198.51.100.7=2" {
		t.Fatalf("burst alert: %+v", got)
	}
	// Metrics count the outcomes.
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	if n := m["verify_outcomes"].(map[string]uint64)[record.CodeNotFound]; n != 9 {
		t.Fatalf("verify_outcomes not_found = %d", n)
	}
	// The alert is in the lifecycle log.
	if !slices.Contains(e.logTypes(), eventlog.AlertRaised) {
		t.Fatal("alert not logged")
	}
}

func TestKeyAlertsFromVerify(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"verify_burst_threshold": 5})
	e.ok(logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "r"})
	k := e.issued("billing", "main")
	ok := record.VerifyResult{Active: true, Key: k, Version: k.Current()}
	for i := 0; i < detect.EstablishedAfter+1; i++ {
		e.b.onVerify(record.VerifyInput{ClientIP: "10.0.0.1"}, ok)
		if i%4 == 3 { // at most 4 verifies per window: below the burst threshold
			e.clock.Advance(time.Minute)
		}
	}
	e.tick()
	if got := e.alertsOf(""); len(got) != 0 {
		t.Fatalf("alerts from normal use: %+v", got)
	}
	// A new address once the usual set is established.
	e.b.onVerify(record.VerifyInput{ClientIP: "192.0.2.50"}, ok)
	e.b.onVerify(record.VerifyInput{Scopes: []string{"admin:all"}}, record.VerifyResult{Code: record.CodeForbiddenScope, Key: k})
	e.b.onVerify(record.VerifyInput{Scopes: []string{"admin:all"}}, record.VerifyResult{Code: record.CodeForbiddenScope, Key: k})
	e.b.onVerify(record.VerifyInput{Audience: "payments"}, record.VerifyResult{Code: record.CodeForbiddenAudience, Key: k})
	e.b.onVerify(record.VerifyInput{ClientIP: "8.8.8.8"}, record.VerifyResult{Code: record.CodeForbiddenIP, Key: k})
	// That made 6 verifies of the key in this window (burst threshold 5);
	// one more is counted into the same burst alert.
	e.b.onVerify(record.VerifyInput{ClientIP: "10.0.0.1"}, ok)
	e.tick()
	for typ, count := range map[string]int{record.AlertNewAddress: 1, record.AlertForbiddenScope: 2, record.AlertForbiddenAudience: 1, record.AlertForbiddenIP: 1, record.AlertVerifyBurst: 2} {
		got := e.alertsOf(typ)
		if len(got) != 1 || got[0].KeyID != k.KeyID || got[0].Count != count {
			t.Fatalf("%s alerts: %+v", typ, got)
		}
	}
	if a := e.alertsOf(record.AlertNewAddress)[0]; a.Details["client_ip"] != "192.0.2.50" {
		t.Fatalf("new address alert details: %v", a.Details)
	}
	// Acknowledge one; filters see it.
	id := e.alertsOf(record.AlertVerifyBurst)[0].ID
	resp := e.ok(logical.UpdateOperation, "alerts/"+id+"/ack", map[string]interface{}{"note": "load test"})
	if resp.Data["acknowledged"] != true {
		t.Fatalf("ack: %v", resp.Data)
	}
	open := e.ok(logical.ReadOperation, "alerts", map[string]interface{}{"acknowledged": "false"}).Data["alerts"].([]map[string]interface{})
	if len(open) != 4 {
		t.Fatalf("unacknowledged alerts = %d", len(open))
	}
	e.userErr(logical.ReadOperation, "alerts", map[string]interface{}{"type": "nope"}, "type must be")
	e.userErr(logical.UpdateOperation, "alerts/nope/ack", nil, "does not exist")
}

func TestIdleTimeoutRevokes(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", map[string]interface{}{"idle_timeout": "1h"})
	e.ok(logical.CreateOperation, "keys/billing/idle", map[string]interface{}{"role": "r"})
	e.clock.Advance(59 * time.Minute)
	e.tick()
	if e.issued("billing", "idle").Revoked {
		t.Fatal("revoked before idle_timeout")
	}
	e.clock.Advance(time.Minute)
	e.tick()
	k := e.issued("billing", "idle")
	if !k.Revoked || k.Versions[0].RevokedBy.Type != actorSystem {
		t.Fatalf("idle key not revoked by system: %+v", k)
	}
	var found bool
	resp := e.ok(logical.ReadOperation, "log", map[string]interface{}{"after": 0, "limit": 1000})
	for _, ev := range resp.Data["entries"].([]map[string]interface{}) {
		if ev["type"] == eventlog.KeyRevoked {
			found = ev["actor"].(map[string]interface{})["type"] == actorSystem
		}
	}
	if !found {
		t.Fatal("idle revocation not logged as system")
	}
}

func TestReviewAndOverdueAlertOnce(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"review_period": "48h"})
	e.setupClientRole("billing", "internal", "r", map[string]interface{}{"rotation_period": "24h", "grace_period": "1h"})
	e.ok(logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "r"})
	e.clock.Advance(24*time.Hour + governance.OverdueTolerance)
	e.tick()
	if n := len(e.alertsOf(record.AlertRotationOverdue)); n != 0 {
		t.Fatalf("overdue alert within tolerance: %d", n)
	}
	e.clock.Advance(time.Minute)
	e.tick()
	e.tick()
	if n := len(e.alertsOf(record.AlertRotationOverdue)); n != 1 {
		t.Fatalf("overdue alerts = %d, want 1", n)
	}
	if n := len(e.alertsOf(record.AlertReviewDue)); n != 0 {
		t.Fatalf("review alert too early: %d", n)
	}
	e.clock.Advance(24 * time.Hour)
	e.tick()
	e.tick()
	if n := len(e.alertsOf(record.AlertReviewDue)); n != 1 {
		t.Fatalf("review alerts = %d, want 1", n)
	}
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	if m["overdue_keys"] != 1 || m["rotation_coverage"] != float64(0) {
		t.Fatalf("metrics overdue/coverage: %v %v", m["overdue_keys"], m["rotation_coverage"])
	}
	// Revoking the key after its alerts gives a time-to-revoke sample.
	e.clock.Advance(10 * time.Minute)
	e.ok(logical.UpdateOperation, "keys/billing/main/revoke", nil)
	m = e.ok(logical.ReadOperation, "metrics", nil).Data
	ttr := m["time_to_revoke"].(map[string]interface{})
	// Measured from the first (overdue) alert, 24h10m before.
	if ttr["count"] != 1 || ttr["p50_seconds"] != (24*time.Hour+10*time.Minute).Seconds() {
		t.Fatalf("time_to_revoke = %v", ttr)
	}
}

func TestRoleWideningAlerts(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read"})
	if n := len(e.alertsOf(record.AlertRoleWidened)); n != 0 {
		t.Fatalf("narrowing raised %d alerts", n)
	}
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read,admin:*"})
	got := e.alertsOf(record.AlertRoleWidened)
	if len(got) != 1 || got[0].Role != "r" || got[0].RaisedBy.EntityID != "entity-alice" {
		t.Fatalf("widening alerts: %+v", got)
	}
}

// BenchmarkOnVerify measures the hot-path cost of alert detection.
func BenchmarkOnVerify(b *testing.B) {
	bk := newBackend(clock.NewFake(testStart))
	k := &record.Key{KeyID: "kid_bench", Client: "c", Name: "n", Role: "r"}
	res := record.VerifyResult{Active: true, Key: k, Version: &record.KeyVersion{Version: 1}}
	in := record.VerifyInput{ClientIP: "10.0.0.1"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			bk.onVerify(in, res)
		}
	})
}

// A lock suspends a client's keys reversibly (SPEC §6): the idle sweep does
// not count the locked time, so neither a long lock nor the first sweep
// after the unlock revokes a key as idle; idleness counts from the unlock.
func TestIdleSweepSparesLockedClients(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"idle_timeout": "2h"})
	key := e.issue("svc", "k", "r", nil)
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatalf("verify = %q", c)
	}
	e.ok(logical.UpdateOperation, "clients/svc/lock", map[string]interface{}{"reason": "INC-42"})
	e.clock.Advance(3 * time.Hour)
	e.tick()
	e.ok(logical.UpdateOperation, "clients/svc/unlock", nil)
	e.tick()
	if c := e.verifyCode(key, nil); c != "" {
		t.Fatalf("after a 3h lock and an unlock, verify = %q", c)
	}
	// Unused for the idle_timeout counted from the unlock: revoked.
	e.clock.Advance(2*time.Hour + time.Minute)
	e.tick()
	if !e.issued("svc", "k").Revoked {
		t.Fatal("a key unused for idle_timeout after the unlock was not revoked")
	}
}

// When Vault stops the mount (reload, upgrade, step-down), alerts that
// verify detected since the last flush, and the outcome counts, are
// stored: a guessing attack just before a reload is not forgotten.
func TestDetectionsStoredWhenMountStops(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"failed_verify_threshold": 3, "alert_window": "1m"})
	for i := 0; i < 5; i++ {
		e.b.onVerify(record.VerifyInput{ClientIP: "203.0.113.9"}, record.VerifyResult{Code: record.CodeMalformed})
	}
	e.b.Cleanup(e.ctx)

	next := newBackend(e.clock)
	if err := next.Setup(e.ctx, &logical.BackendConfig{Logger: hclog.NewNullLogger(), System: logical.TestSystemView(), StorageView: e.storage}); err != nil {
		t.Fatal(err)
	}
	e.b = next
	if got := e.alertsOf(record.AlertFailedVerifyBurst); len(got) != 1 || got[0].Count != 5 {
		t.Fatalf("after the mount stopped: %+v", got)
	}
	if st := e.govState(); st.Verify[record.CodeMalformed] != 5 {
		t.Fatalf("verify outcomes after the mount stopped: %v", st.Verify)
	}
}
