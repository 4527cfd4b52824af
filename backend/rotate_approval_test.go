package backend

import (
	"errors"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
)

// rotateAs rotates keys/billing/<name> as entity, returning the handler's
// error (an injected failure) instead of failing the test on it.
func (e *testEnv) rotateAs(entity, name string, data map[string]interface{}) (*logical.Response, error) {
	return e.b.HandleRequest(e.ctx, &logical.Request{
		Operation: logical.UpdateOperation, Path: "keys/billing/" + name + "/rotate", Storage: e.storage,
		EntityID: entity, DisplayName: "userpass-" + entity, ID: "req-rotate-" + entity,
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"}, Data: data,
	})
}

// gatedKey issues billing/main under role gated (requires_approval) with an
// approval and returns its secret.
func (e *testEnv) gatedKey() string {
	e.t.Helper()
	e.setupClientRole("billing", "internal", "gated", map[string]interface{}{"requires_approval": true})
	resp := expectOK(e.t, e.doAs("alice", logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "gated", "approval_id": e.approvedRequest("main")}))
	return resp.Data["key"].(string)
}

// A rotation hands out a working secret: under a role that requires
// approval it needs an approved request for that key, used up once, as an
// issuance does.
func TestRotateRequiresApproval(t *testing.T) {
	e := newTestEnv(t)
	first := e.gatedKey()

	for _, data := range []map[string]interface{}{nil, {"stage": true}} {
		resp, err := e.rotateAs("alice", "main", data)
		if err != nil {
			t.Fatal(err)
		}
		expectErr(t, resp, "requires approval")
	}
	if k := e.issued("billing", "main"); k.LatestVersion() != 1 {
		t.Fatalf("a refused rotation created a version: %d", k.LatestVersion())
	}

	other := e.approvedRequest("other")
	resp, _ := e.rotateAs("alice", "main", map[string]interface{}{"approval_id": other})
	expectErr(t, resp, "not billing/main")
	id := e.approvedRequest("main")
	resp, _ = e.rotateAs("bob", "main", map[string]interface{}{"approval_id": id})
	expectErr(t, resp, "approved request")
	resp, _ = e.rotateAs("carol", "main", map[string]interface{}{"approval_id": id})
	expectErr(t, resp, "only its requester")

	resp, err := e.rotateAs("alice", "main", map[string]interface{}{"approval_id": id})
	if err != nil {
		t.Fatal(err)
	}
	second := expectOK(t, resp).Data["key"].(string)
	if e.verifyCode(second, nil) != "" || e.verifyCode(first, nil) != "" {
		t.Fatal("the rotated key or its previous version does not verify")
	}
	resp, _ = e.rotateAs("alice", "main", map[string]interface{}{"approval_id": id})
	expectErr(t, resp, "already used")
	resp, _ = e.rotateAs("alice", "main", map[string]interface{}{"approval_id": id, "stage": true})
	expectErr(t, resp, "already used")

	got := expectOK(t, e.doAs("alice", logical.ReadOperation, "requests/"+id, nil))
	k := e.issued("billing", "main")
	if got.Data["state"] != requestUsed || got.Data["key_id"] != k.KeyID || got.Data["key_version"] != 2 || got.Data["approval_id"] != id {
		t.Fatalf("request after the rotation: %v", got.Data)
	}
	if v := k.Version(2); v == nil || v.ApprovalID != id {
		t.Fatalf("version 2 does not carry its approval: %+v", v)
	}
	used := e.logEventsOf(eventlog.RequestUsed)
	if len(used) != 2 || used[1].Details["approval_id"] != id || used[1].Version != 2 {
		t.Fatalf("request.used entries: %+v", used)
	}
	rotated := e.logEventsOf(eventlog.KeyRotated)
	if len(rotated) != 1 || rotated[0].Details["approval_id"] != id {
		t.Fatalf("key.rotated entries: %+v", rotated)
	}

	// Staging is a rotation too: a fresh approval stages once.
	staged := e.approvedRequest("main")
	resp, _ = e.rotateAs("alice", "main", map[string]interface{}{"approval_id": staged, "stage": true})
	if pending := expectOK(t, resp).Data["key"].(string); e.verifyCode(pending, map[string]interface{}{"allow_pending": true}) != "" {
		t.Fatal("the staged version does not verify with allow_pending")
	}
	e.logValid()
}

// approval_id is refused where no approval is needed, like at issuance.
func TestRotateRefusesApprovalOnOrdinaryRole(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	e.issue("billing", "main", "r", nil)
	resp, err := e.rotateAs("alice", "main", map[string]interface{}{"approval_id": "req_forged"})
	if err != nil {
		t.Fatal(err)
	}
	expectErr(t, resp, "does not require approval")
	resp, _ = e.rotateAs("alice", "main", nil)
	expectOK(t, resp)
}

// A rotation whose commit fails leaves its approval usable; one cut off
// after the key record was written counts it as used, also after a restart.
func TestRotateApprovalOnFailedCommit(t *testing.T) {
	e := newTestEnv(t)
	e.gatedKey()
	id := e.approvedRequest("main")
	e.b.commitHook = func(s string) error {
		if s == "index" {
			return errors.New("storage unavailable")
		}
		return nil
	}
	if _, err := e.rotateAs("alice", "main", map[string]interface{}{"approval_id": id}); err == nil {
		t.Fatal("a rotation with a failing commit succeeded")
	}
	e.b.commitHook = nil
	got := expectOK(t, e.doAs("alice", logical.ReadOperation, "requests/"+id, nil))
	if got.Data["state"] != requestApproved {
		t.Fatalf("request after a failed rotation: %v", got.Data)
	}
	// An unapproved version 2 (a scheduled rotation, say) does not use it.
	if err := rotateUnapproved(e, "billing", "main"); err != nil {
		t.Fatal(err)
	}
	got = expectOK(t, e.doAs("alice", logical.ReadOperation, "requests/"+id, nil))
	if got.Data["state"] != requestApproved {
		t.Fatalf("request after an unapproved version took the bound number: %v", got.Data)
	}

	e.b.commitHook = func(s string) error {
		if s == "key" {
			return errors.New("simulated crash after the key record")
		}
		return nil
	}
	if _, err := e.rotateAs("alice", "main", map[string]interface{}{"approval_id": id}); err == nil {
		t.Fatal("a rotation with a crash succeeded")
	}
	e.b.commitHook = nil
	e.restart()
	got = expectOK(t, e.doAs("alice", logical.ReadOperation, "requests/"+id, nil))
	if got.Data["state"] != requestUsed || got.Data["key_version"] != 3 {
		t.Fatalf("request after a crash past the key write: %v", got.Data)
	}
	resp, _ := e.rotateAs("alice", "main", map[string]interface{}{"approval_id": id})
	expectErr(t, resp, "already used")
	if k := e.issued("billing", "main"); k.LatestVersion() != 3 {
		t.Fatalf("versions after the refused reuse: %d", k.LatestVersion())
	}
}

// rotateUnapproved rotates a key as the tick does, with no approval and no
// caller to hand the secret to.
func rotateUnapproved(e *testEnv, client, name string) error {
	defer e.b.locks.lockKey(client, name)()
	k, role, c, cfg, err := e.b.loadKeyForRotation(e.ctx, e.storage, client, name)
	if err != nil {
		return err
	}
	_, err = e.b.rotateLoadedLocked(e.ctx, nil, e.storage, k, role, c, cfg, false, nil)
	return err
}
