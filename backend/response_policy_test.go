package backend

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// raiseFor raises an alert of typ and severity about client (and key k
// when not nil), as detection would, and returns it as stored.
func (e *testEnv) raiseFor(typ, severity, client string, k *record.Key) *record.Alert {
	e.t.Helper()
	a := &record.Alert{Type: typ, Severity: severity, Client: client, Message: "test alert"}
	if k != nil {
		a = keyAlertFor(k, typ, severity, "test alert", nil)
	}
	if err := e.b.raiseAlert(e.ctx, e.storage, a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *testEnv) respond(a *record.Alert) {
	e.t.Helper()
	if err := e.b.respondToAlert(e.ctx, e.storage, a); err != nil {
		e.t.Fatalf("respondToAlert(%s): %v", a.ID, err)
	}
}

// responseEntries returns the response.executed and response.skipped
// entries about alert id, in log order.
func (e *testEnv) responseEntries(id string) []eventlog.Event {
	e.t.Helper()
	var out []eventlog.Event
	for _, typ := range []string{eventlog.ResponseExecuted, eventlog.ResponseSkipped} {
		for _, ev := range e.logEventsOf(typ) {
			if ev.Details["alert_id"] == id {
				out = append(out, ev)
			}
		}
	}
	return out
}

// onlyEntry asserts alert id has exactly one response entry, of typ, by
// system, for policy and action, and returns it.
func (e *testEnv) onlyEntry(id, typ, policy, action string) eventlog.Event {
	e.t.Helper()
	got := e.responseEntries(id)
	if len(got) != 1 {
		e.t.Fatalf("response entries of alert %s: %+v, want one", id, got)
	}
	ev := got[0]
	if ev.Type != typ || ev.Actor.Type != actorSystem || ev.Details["policy"] != policy || ev.Details["action"] != action {
		e.t.Fatalf("response entry of alert %s: %+v", id, ev)
	}
	return ev
}

func (e *testEnv) clientStatus(name string) *record.Client {
	e.t.Helper()
	c, err := e.b.getClient(e.ctx, e.storage, name)
	if err != nil || c == nil {
		e.t.Fatalf("client %s: %v", name, err)
	}
	return c
}

// A lock_client policy locks the alert's client as system, names the
// alert on client.locked and in response.executed, and the lock is undone
// by the ordinary unlock.
func TestResponseLockClient(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	e.ok(logical.CreateOperation, "responses/lock-on-ip", map[string]interface{}{"alert_types": "forbidden_ip", "action": "lock_client"})
	// A second policy with the same action: the client is locked once.
	e.ok(logical.CreateOperation, "responses/lock-all", map[string]interface{}{"alert_types": "*", "action": "lock_client"})
	e.ok(logical.CreateOperation, "responses/notify", map[string]interface{}{"alert_types": "forbidden_ip"})

	a := e.raiseFor(record.AlertForbiddenIP, record.SeverityWarning, "acme", nil)
	e.respond(a)

	c := e.clientStatus("acme")
	if c.Status != record.ClientLocked || c.StatusChangedBy == nil || c.StatusChangedBy.Type != actorSystem || !strings.Contains(c.StatusReason, a.ID) {
		t.Fatalf("client after the response: %+v", c)
	}
	if c.UnlockRequiresApproval {
		t.Fatal("lock_client made the unlock need approval")
	}
	ev := e.onlyEntry(a.ID, eventlog.ResponseExecuted, "lock-all", record.ResponseLockClient)
	if ev.Details["outcome"] != "locked" || ev.Client != "acme" {
		t.Fatalf("response.executed: %+v", ev)
	}
	locked := e.logEventsOf(eventlog.ClientLocked)
	if len(locked) != 1 || locked[0].Details["alert_id"] != a.ID || locked[0].Actor.Type != actorSystem {
		t.Fatalf("client.locked entries: %+v", locked)
	}

	// A second alert finds the client locked already.
	b := e.raiseFor(record.AlertForbiddenIP, record.SeverityWarning, "acme", nil)
	e.respond(b)
	if ev := e.onlyEntry(b.ID, eventlog.ResponseExecuted, "lock-all", record.ResponseLockClient); ev.Details["outcome"] != "already_locked" {
		t.Fatalf("second response: %+v", ev)
	}

	// Undo: the ordinary unlock, with no approval.
	e.ok(logical.UpdateOperation, "clients/acme/unlock", map[string]interface{}{"reason": "false positive"})
	if c := e.clientStatus("acme"); c.Status != record.ClientActive {
		t.Fatalf("client after unlock: %s", c.Status)
	}
}

// A revoke_key policy revokes the alert's key as a whole, with a reason
// naming the alert; an alert without a key makes it do nothing.
func TestResponseRevokeKey(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	e.ok(logical.CreateOperation, "keys/acme/main", map[string]interface{}{"role": "svc"})
	e.ok(logical.CreateOperation, "responses/revoke-leaked", map[string]interface{}{"alert_types": "leak_reported,forbidden_ip", "action": "revoke_key"})

	noKey := e.raiseFor(record.AlertForbiddenIP, record.SeverityWarning, "acme", nil)
	e.respond(noKey)
	if got := e.responseEntries(noKey.ID); len(got) != 0 {
		t.Fatalf("a key action on an alert without a key: %+v", got)
	}

	a := e.raiseFor(record.AlertLeakReported, record.SeverityCritical, "acme", e.issued("acme", "main"))
	e.respond(a)
	k := e.issued("acme", "main")
	if !k.Revoked || !strings.Contains(k.RevokeReason, a.ID) || !strings.Contains(k.RevokeReason, "revoke-leaked") || k.Versions[0].RevokedBy.Type != actorSystem {
		t.Fatalf("key after the response: revoked=%v reason=%q", k.Revoked, k.RevokeReason)
	}
	if ev := e.onlyEntry(a.ID, eventlog.ResponseExecuted, "revoke-leaked", record.ResponseRevokeKey); ev.Details["outcome"] != "revoked" || ev.KeyID != k.KeyID {
		t.Fatalf("response.executed: %+v", ev)
	}
	revoked := e.logEventsOf(eventlog.KeyRevoked)
	if len(revoked) != 1 || !strings.Contains(revoked[0].Details["reason"], a.ID) || revoked[0].Actor.Type != actorSystem {
		t.Fatalf("key.revoked entries: %+v", revoked)
	}
	// Undo as by hand: a new key for the client.
	e.ok(logical.CreateOperation, "keys/acme/main2", map[string]interface{}{"role": "svc"})
}

// A rotate_key policy rotates a retrievable key once per alert, however
// often it is called, also when the call that rotated was interrupted
// before recording it; a key its owner cannot read back is not rotated.
func TestResponseRotateKey(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "internal", "svc", map[string]interface{}{"retrievable": true})
	e.ok(logical.CreateOperation, "roles/sealed", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "retrievable": false})
	e.ok(logical.CreateOperation, "keys/acme/main", map[string]interface{}{"role": "svc"})
	e.ok(logical.CreateOperation, "keys/acme/sealed", map[string]interface{}{"role": "sealed"})
	e.ok(logical.CreateOperation, "responses/rotate", map[string]interface{}{"alert_types": "new_address", "action": "rotate_key"})

	a := e.raiseFor(record.AlertNewAddress, record.SeverityInfo, "acme", e.issued("acme", "main"))
	e.respond(a)
	e.respond(a)
	if v := e.issued("acme", "main").LatestVersion(); v != 2 {
		t.Fatalf("latest version after two calls: %d, want 2", v)
	}
	ev := e.onlyEntry(a.ID, eventlog.ResponseExecuted, "rotate", record.ResponseRotateKey)
	if ev.Details["outcome"] != "rotated to version 2" {
		t.Fatalf("response.executed: %+v", ev)
	}
	if n := len(e.logEventsOf(eventlog.KeyRotated)); n != 1 {
		t.Fatalf("key.rotated entries: %d", n)
	}

	// As if the call that rotated stopped before marking its step done.
	key := responseHandledStorageKey(a.ID)
	h, err := getJSON[responseHandled](e.ctx, e.storage, key, "handled")
	if err != nil || h == nil || len(h.Steps) != 1 || !h.Steps[0].Done {
		t.Fatalf("handled record: %+v %v", h, err)
	}
	h.Steps[0].Done = false
	if err := putJSON(e.ctx, e.storage, key, "handled", h); err != nil {
		t.Fatal(err)
	}
	e.respond(a)
	if v := e.issued("acme", "main").LatestVersion(); v != 2 {
		t.Fatalf("latest version after an interrupted call was repeated: %d, want 2", v)
	}
	if got := e.responseEntries(a.ID); len(got) != 2 || got[1].Details["outcome"] != "already_rotated" {
		t.Fatalf("entries after the repeat: %+v", got)
	}

	b := e.raiseFor(record.AlertNewAddress, record.SeverityInfo, "acme", e.issued("acme", "sealed"))
	e.respond(b)
	if v := e.issued("acme", "sealed").LatestVersion(); v != 1 {
		t.Fatalf("a non-retrievable key was rotated to version %d", v)
	}
	if ev := e.onlyEntry(b.ID, eventlog.ResponseExecuted, "rotate", record.ResponseRotateKey); !strings.HasPrefix(ev.Details["outcome"], "skipped: the key is not retrievable") {
		t.Fatalf("response.executed for a sealed key: %+v", ev)
	}
}

// Exempt clients, alerts below min_severity and disabled policies are not
// acted on.
func TestResponseExemptionSeverityEnabled(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "internal", "svc", nil)
	e.ok(logical.CreateOperation, "clients/beta", map[string]interface{}{"owner": "team-beta"})
	e.ok(logical.CreateOperation, "clients/gamma", map[string]interface{}{"owner": "team-gamma"})
	e.ok(logical.CreateOperation, "responses/lock", map[string]interface{}{
		"alert_types": "*", "action": "lock_client", "min_severity": "critical", "exempt_clients": "acme",
	})
	e.ok(logical.CreateOperation, "responses/off", map[string]interface{}{"alert_types": "*", "action": "lock_client", "enabled": false})

	for _, a := range []*record.Alert{
		e.raiseFor(record.AlertForbiddenScope, record.SeverityWarning, "beta", nil),
		e.raiseFor(record.AlertForbiddenScope, record.SeverityCritical, "acme", nil),
	} {
		e.respond(a)
		if got := e.responseEntries(a.ID); len(got) != 0 {
			t.Fatalf("alert %s (%s, %s) was acted on: %+v", a.ID, a.Client, a.Severity, got)
		}
	}
	if e.clientStatus("beta").Status != record.ClientActive || e.clientStatus("acme").Status != record.ClientActive {
		t.Fatal("a client was locked")
	}
	a := e.raiseFor(record.AlertForbiddenScope, record.SeverityCritical, "beta", nil)
	e.respond(a)
	e.onlyEntry(a.ID, eventlog.ResponseExecuted, "lock", record.ResponseLockClient)
	if e.clientStatus("beta").Status != record.ClientLocked {
		t.Fatal("beta not locked by a critical alert")
	}
	// Enabling the disabled policy makes it act.
	e.ok(logical.UpdateOperation, "responses/off", map[string]interface{}{"enabled": true})
	g := e.raiseFor(record.AlertReviewDue, record.SeverityInfo, "gamma", nil)
	e.respond(g)
	e.onlyEntry(g.ID, eventlog.ResponseExecuted, "off", record.ResponseLockClient)
}

// The rate cap: with max_actions=2, a third alert in the window is not
// acted on (response.skipped, one rate-capped alert per window, which
// itself triggers nothing); after the window the policy acts again.
func TestResponseRateCap(t *testing.T) {
	e := newTestEnv(t)
	for _, c := range []string{"c1", "c2", "c3", "c4", "c5"} {
		e.ok(logical.CreateOperation, "clients/"+c, map[string]interface{}{"owner": "team"})
	}
	e.ok(logical.CreateOperation, "responses/lock", map[string]interface{}{"alert_types": "verify_burst", "action": "lock_client", "max_actions": 2, "window": "1h"})

	var alerts []*record.Alert
	for _, c := range []string{"c1", "c2", "c3"} {
		a := e.raiseFor(record.AlertVerifyBurst, record.SeverityWarning, c, nil)
		e.respond(a)
		alerts = append(alerts, a)
		e.clock.Advance(time.Minute)
	}
	for i, want := range []string{record.ClientLocked, record.ClientLocked, record.ClientActive} {
		if got := e.clientStatus(alerts[i].Client).Status; got != want {
			t.Fatalf("client %s is %s, want %s", alerts[i].Client, got, want)
		}
	}
	skipped := e.onlyEntry(alerts[2].ID, eventlog.ResponseSkipped, "lock", record.ResponseLockClient)
	if skipped.Details["reason"] != "rate cap" || skipped.Details["cap"] != "2 per 1h0m0s" {
		t.Fatalf("response.skipped: %+v", skipped)
	}
	capped := e.alertsOf(record.AlertResponseRateCapped)
	if len(capped) != 1 || capped[0].Severity != record.SeverityCritical || capped[0].Details["policy"] != "lock" ||
		capped[0].Details["alert_id"] != alerts[2].ID || capped[0].ID != skipped.Details["rate_capped_alert_id"] {
		t.Fatalf("rate-capped alerts: %+v", capped)
	}
	// The engine's own alert triggers nothing, even for a policy of all types.
	e.ok(logical.CreateOperation, "responses/all", map[string]interface{}{"alert_types": "*", "action": "lock_client"})
	e.respond(capped[0])
	if got := e.responseEntries(capped[0].ID); len(got) != 0 {
		t.Fatalf("the rate-capped alert was responded to: %+v", got)
	}
	e.ok(logical.DeleteOperation, "responses/all", nil)

	// Still in the window: skipped again, without a second capped alert.
	d := e.raiseFor(record.AlertVerifyBurst, record.SeverityWarning, "c4", nil)
	e.respond(d)
	e.onlyEntry(d.ID, eventlog.ResponseSkipped, "lock", record.ResponseLockClient)
	if n := len(e.alertsOf(record.AlertResponseRateCapped)); n != 1 {
		t.Fatalf("%d rate-capped alerts in one window", n)
	}

	// An hour after the first action, one slot is free again.
	e.clock.Advance(time.Hour - 2*time.Minute)
	f := e.raiseFor(record.AlertVerifyBurst, record.SeverityWarning, "c5", nil)
	e.respond(f)
	if ev := e.onlyEntry(f.ID, eventlog.ResponseExecuted, "lock", record.ResponseLockClient); ev.Details["outcome"] != "locked" {
		t.Fatalf("after the window: %+v", ev)
	}
	// A repeated call for a skipped alert neither acts nor counts again.
	e.respond(d)
	if e.clientStatus("c4").Status != record.ClientActive || len(e.responseEntries(d.ID)) != 1 {
		t.Fatal("a skipped alert was acted on when handled again")
	}
}

// require_reapproval locks the client so that only an approved unlock
// request, used by its requester, unlocks it.
func TestResponseRequireReapproval(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "clients/acme", map[string]interface{}{"owner": "team"})
	e.ok(logical.CreateOperation, "clients/beta", map[string]interface{}{"owner": "team"})
	e.ok(logical.CreateOperation, "responses/reapprove", map[string]interface{}{"alert_types": "forbidden_audience", "action": "require_reapproval"})

	a := e.raiseFor(record.AlertForbiddenAudience, record.SeverityWarning, "acme", nil)
	e.respond(a)
	c := e.clientStatus("acme")
	if c.Status != record.ClientLocked || !c.UnlockRequiresApproval {
		t.Fatalf("client after require_reapproval: %+v", c)
	}
	if ev := e.onlyEntry(a.ID, eventlog.ResponseExecuted, "reapprove", record.ResponseRequireReapproval); ev.Details["outcome"] != "locked; unlock requires approval" {
		t.Fatalf("response.executed: %+v", ev)
	}
	if e.ok(logical.ReadOperation, "clients/acme", nil).Data["unlock_requires_approval"] != true {
		t.Fatal("client read does not show unlock_requires_approval")
	}

	e.userErr(logical.UpdateOperation, "clients/acme/unlock", nil, "kind=unlock")
	// An unlock request is only for a client that needs one.
	expectErr(t, e.doAs("alice", logical.UpdateOperation, "requests", map[string]interface{}{"kind": "unlock", "client": "beta", "justification": "x"}), "needs no approval")
	expectErr(t, e.doAs("alice", logical.UpdateOperation, "requests", map[string]interface{}{"kind": "unlock", "client": "acme", "role": "r", "justification": "x"}), "role and name")
	expectErr(t, e.doAs("alice", logical.UpdateOperation, "requests", map[string]interface{}{"kind": "other", "client": "acme", "justification": "x"}), "kind")

	req := expectOK(t, e.doAs("alice", logical.UpdateOperation, "requests", map[string]interface{}{"kind": "unlock", "client": "acme", "justification": "false positive, checked"}))
	id := req.Data["approval_id"].(string)
	if req.Data["kind"] != "unlock" {
		t.Fatalf("request kind: %v", req.Data["kind"])
	}
	// Pending: not usable yet.
	expectErr(t, e.doAs("alice", logical.UpdateOperation, "clients/acme/unlock", map[string]interface{}{"approval_id": id}), "pending")
	expectErr(t, e.doAs("alice", logical.UpdateOperation, "requests/"+id+"/approve", nil), "separation of duties")
	expectOK(t, e.doAs("bob", logical.UpdateOperation, "requests/"+id+"/approve", nil))
	// The approver cannot use it, nor can it issue a key.
	expectErr(t, e.doAs("bob", logical.UpdateOperation, "clients/acme/unlock", map[string]interface{}{"approval_id": id}), "separation of duties")
	e.ok(logical.CreateOperation, "roles/gated", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "requires_approval": true})
	expectErr(t, e.doAs("alice", logical.CreateOperation, "keys/beta/k", map[string]interface{}{"role": "gated", "approval_id": id}), "not a key")

	expectOK(t, e.doAs("alice", logical.UpdateOperation, "clients/acme/unlock", map[string]interface{}{"approval_id": id}))
	c = e.clientStatus("acme")
	if c.Status != record.ClientActive || c.UnlockRequiresApproval {
		t.Fatalf("client after the approved unlock: %+v", c)
	}
	unlocked := e.logEventsOf(eventlog.ClientUnlocked)
	if len(unlocked) != 1 || unlocked[0].Details["approval_id"] != id {
		t.Fatalf("client.unlocked entries: %+v", unlocked)
	}
	if st := e.doAs("alice", logical.ReadOperation, "requests/"+id, nil).Data["state"]; st != requestUsed {
		t.Fatalf("request state after the unlock: %v", st)
	}
	// Single use; and an approval is refused where none is needed.
	e.ok(logical.UpdateOperation, "clients/acme/lock", nil)
	expectErr(t, e.doAs("alice", logical.UpdateOperation, "clients/acme/unlock", map[string]interface{}{"approval_id": id}), "does not need an approval")
	e.ok(logical.UpdateOperation, "clients/acme/unlock", nil)

	// A client locked by hand first keeps its lock; its unlock now needs approval.
	e.ok(logical.UpdateOperation, "clients/beta/lock", map[string]interface{}{"reason": "INC-1"})
	b := e.raiseFor(record.AlertForbiddenAudience, record.SeverityWarning, "beta", nil)
	e.respond(b)
	if ev := e.onlyEntry(b.ID, eventlog.ResponseExecuted, "reapprove", record.ResponseRequireReapproval); ev.Details["outcome"] != "already_locked; unlock now requires approval" {
		t.Fatalf("response.executed: %+v", ev)
	}
	if c := e.clientStatus("beta"); c.StatusReason != "INC-1" || !c.UnlockRequiresApproval {
		t.Fatalf("beta: %+v", c)
	}
	e.userErr(logical.UpdateOperation, "clients/beta/unlock", nil, "approval_id")
}

// Bad policies are refused with a 400 naming the field; defaults fill the
// rest; a policy deleted stops acting.
func TestResponsePolicyInput(t *testing.T) {
	e := newTestEnv(t)
	for _, c := range []struct {
		data  map[string]interface{}
		field string
	}{
		{map[string]interface{}{"action": "lock_client"}, "alert_types"},
		{map[string]interface{}{"alert_types": "no_such_type"}, "alert_types"},
		{map[string]interface{}{"alert_types": "response_rate_capped"}, "alert_types"},
		{map[string]interface{}{"alert_types": "*", "action": "delete_everything"}, "action"},
		{map[string]interface{}{"alert_types": "*", "min_severity": "severe"}, "min_severity"},
		{map[string]interface{}{"alert_types": "*", "max_actions": 0}, "max_actions"},
		{map[string]interface{}{"alert_types": "*", "max_actions": 1001}, "max_actions"},
		{map[string]interface{}{"alert_types": "*", "window": "10s"}, "window"},
		{map[string]interface{}{"alert_types": "*", "exempt_clients": "bad name!"}, "exempt_clients"},
		{map[string]interface{}{"alert_types": strings.Repeat("x", 200)}, "alert_types"},
		{map[string]interface{}{"alert_types": "*", "unknown": "x"}, "unknown"},
	} {
		e.userErr(logical.CreateOperation, "responses/p", c.data, c.field)
	}
	e.userErr(logical.CreateOperation, "responses/bad name", map[string]interface{}{"alert_types": "*"}, "name")
	if keys := e.ok(logical.ListOperation, "responses/", nil).Data["keys"]; keys != nil {
		t.Fatalf("refused policies were stored: %v", keys)
	}

	d := e.ok(logical.CreateOperation, "responses/p", map[string]interface{}{"alert_types": "leak_reported, leak_reported"}).Data
	if d["action"] != record.ResponseNotify || d["max_actions"] != 10 || d["window"] != int64(3600) || d["enabled"] != true ||
		d["min_severity"] != "" || len(d["alert_types"].([]string)) != 1 {
		t.Fatalf("defaults: %v", d)
	}
	// An update changes only the fields given, and is validated whole.
	e.userErr(logical.UpdateOperation, "responses/p", map[string]interface{}{"alert_types": ""}, "alert_types")
	d = e.ok(logical.UpdateOperation, "responses/p", map[string]interface{}{"action": "lock_client"}).Data
	if d["action"] != record.ResponseLockClient || d["alert_types"].([]string)[0] != record.AlertLeakReported {
		t.Fatalf("after update: %v", d)
	}
	e.ok(logical.CreateOperation, "clients/acme", map[string]interface{}{"owner": "team"})
	e.ok(logical.DeleteOperation, "responses/p", nil)
	if resp := e.do(logical.ReadOperation, "responses/p", nil); resp != nil {
		t.Fatalf("deleted policy read: %v", resp.Data)
	}
	a := e.raiseFor(record.AlertLeakReported, record.SeverityCritical, "acme", nil)
	e.respond(a)
	if e.clientStatus("acme").Status != record.ClientActive {
		t.Fatal("a deleted policy acted")
	}
}

// readCountingStorage counts reads.
type readCountingStorage struct {
	logical.Storage
	reads int
}

func (c *readCountingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	c.reads++
	return c.Storage.Get(ctx, key)
}

func (c *readCountingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	c.reads++
	return c.Storage.List(ctx, prefix)
}

// Policies are cached: an alert no policy selects costs no storage read
// once they are loaded, and a policy written on another node is seen
// after Vault's invalidation.
func TestResponsePoliciesCached(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "clients/acme", map[string]interface{}{"owner": "team"})
	cs := &readCountingStorage{Storage: e.storage}
	a := e.raiseFor(record.AlertNewAddress, record.SeverityWarning, "acme", nil)
	if err := e.b.respondToAlert(e.ctx, cs, a); err != nil {
		t.Fatal(err)
	}
	cs.reads = 0
	if err := e.b.respondToAlert(e.ctx, cs, a); err != nil {
		t.Fatal(err)
	}
	if cs.reads != 0 {
		t.Fatalf("%d storage reads with no policies cached", cs.reads)
	}

	// Another node writes a policy: storage changes, then Vault invalidates.
	p := &record.ResponsePolicy{Name: "lock", AlertTypes: []string{"*"}, Action: record.ResponseLockClient, MaxActions: 5, Window: time.Hour, Enabled: true}
	if err := putJSON(e.ctx, e.storage, responsePolicyStorageKey("lock"), "policy", p); err != nil {
		t.Fatal(err)
	}
	e.respond(a)
	if e.clientStatus("acme").Status != record.ClientActive {
		t.Fatal("acted before the invalidation: the cache was not used")
	}
	e.b.invalidate(e.ctx, responsePolicyStorageKey("lock"))
	e.respond(a)
	if e.clientStatus("acme").Status != record.ClientLocked {
		t.Fatal("the invalidated cache still hid the new policy")
	}
}

// Handled records are pruned after their retention, and an alert older
// than it is no longer acted on.
func TestResponseHandledRetention(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "clients/acme", map[string]interface{}{"owner": "team"})
	e.ok(logical.CreateOperation, "clients/beta", map[string]interface{}{"owner": "team"})
	e.ok(logical.CreateOperation, "responses/lock", map[string]interface{}{"alert_types": "*", "action": "lock_client"})
	a := e.raiseFor(record.AlertNewAddress, record.SeverityWarning, "acme", nil)
	e.respond(a)
	old := e.raiseFor(record.AlertNewAddress, record.SeverityWarning, "beta", nil)

	e.clock.Advance(responseHandledRetention + time.Hour)
	e.respond(old)
	if e.clientStatus("beta").Status != record.ClientActive {
		t.Fatal("an alert past the retention was acted on")
	}
	c := e.raiseFor(record.AlertNewAddress, record.SeverityWarning, "beta", nil)
	e.respond(c)
	for _, sk := range e.storageKeys() {
		if sk == responseHandledStorageKey(a.ID) {
			t.Fatal("the handled record of an old alert was not pruned")
		}
	}
	if e.clientStatus("beta").Status != record.ClientLocked {
		t.Fatal("a recent alert was not acted on")
	}
}

// driveResponsePolicies drives the response policy paths for TestResponses,
// and the answers a require_reapproval lock changes: the client read, the
// unlock request and the approved unlock.
func driveResponsePolicies(r *respEnv) {
	r.check(logical.CreateOperation, "responses/reapprove", map[string]interface{}{
		"alert_types": "forbidden_ip,new_address", "action": "require_reapproval", "min_severity": "warning",
		"exempt_clients": "trusted", "max_actions": 3, "window": "30m",
	})
	r.check(logical.UpdateOperation, "responses/reapprove", map[string]interface{}{"enabled": true})
	r.check(logical.ReadOperation, "responses/reapprove", nil)
	r.check(logical.ListOperation, "responses/", nil)

	r.check(logical.CreateOperation, "clients/acme", map[string]interface{}{"owner": "team"})
	r.respond(r.raiseFor(record.AlertForbiddenIP, record.SeverityCritical, "acme", nil))
	r.check(logical.ReadOperation, "clients/acme", nil)
	id := r.check(logical.UpdateOperation, "requests", map[string]interface{}{"kind": "unlock", "client": "acme", "justification": "checked"}).Data["approval_id"].(string)
	r.checkAs("bob", logical.UpdateOperation, "requests/"+id+"/approve", nil)
	r.check(logical.UpdateOperation, "clients/acme/unlock", map[string]interface{}{"approval_id": id})
	r.check(logical.ReadOperation, "requests/"+id, nil)

	r.check(logical.DeleteOperation, "responses/reapprove", nil)
}

// Writing and deleting a response policy are lifecycle-log entries naming
// who did it, so an auditor sees when automation was changed.
func TestResponsePolicyChangesLogged(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "responses/lock", map[string]interface{}{"alert_types": "leak_reported", "action": "lock_client"})
	e.ok(logical.UpdateOperation, "responses/lock", map[string]interface{}{"enabled": false})
	e.ok(logical.DeleteOperation, "responses/lock", nil)
	e.ok(logical.DeleteOperation, "responses/lock", nil) // gone already: nothing to log

	written := e.logEventsOf(eventlog.ResponsePolicyWritten)
	if len(written) != 2 {
		t.Fatalf("response_policy.written entries: %+v, want 2", written)
	}
	first, second := written[0].Details, written[1].Details
	if first["policy"] != "lock" || first["action"] != "lock_client" || first["alert_types"] != "leak_reported" || first["created"] != "true" || first["enabled"] != "true" {
		t.Fatalf("create entry details: %v", first)
	}
	if second["created"] != "false" || second["enabled"] != "false" {
		t.Fatalf("update entry details: %v", second)
	}
	deleted := e.logEventsOf(eventlog.ResponsePolicyDeleted)
	if len(deleted) != 1 || deleted[0].Details["policy"] != "lock" || deleted[0].Actor.Type == actorSystem {
		t.Fatalf("response_policy.deleted entries: %+v, want one by the caller", deleted)
	}
}
