package backend

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/hashicorp/vault/sdk/logical"
)

// doAs runs a request as the given Vault entity ("" for a token without an
// entity, such as root).
func (e *testEnv) doAs(entity string, op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	req := &logical.Request{
		Operation:   op,
		Path:        path,
		Data:        data,
		Storage:     e.storage,
		EntityID:    entity,
		DisplayName: "userpass-" + entity,
		ID:          "req-" + entity + "-" + path,
		Connection:  &logical.Connection{RemoteAddr: "127.0.0.1"},
	}
	if entity == "" {
		req.DisplayName = "root"
	}
	if op == logical.CreateOperation || op == logical.UpdateOperation {
		if exists, found, err := e.b.HandleExistenceCheck(e.ctx, req); err == nil && found {
			req.Operation = logical.UpdateOperation
			if !exists {
				req.Operation = logical.CreateOperation
			}
		}
	}
	resp, err := e.b.HandleRequest(e.ctx, req)
	if err != nil {
		e.t.Fatalf("%s %s as %q: %v", op, path, entity, err)
	}
	return resp
}

func expectErr(t *testing.T, resp *logical.Response, want string) {
	t.Helper()
	if resp == nil || !resp.IsError() {
		t.Fatalf("expected an error mentioning %q, got %#v", want, resp)
	}
	if !strings.Contains(resp.Error().Error(), want) {
		t.Fatalf("error %q does not mention %q", resp.Error(), want)
	}
}

func expectOK(t *testing.T, resp *logical.Response) *logical.Response {
	t.Helper()
	if resp == nil || resp.IsError() {
		t.Fatalf("unexpected response %#v", resp)
	}
	return resp
}

func (e *testEnv) newRequest(entity, client, role, name string, extra map[string]interface{}) string {
	e.t.Helper()
	data := map[string]interface{}{"client": client, "role": role, "name": name, "justification": "needed for the orders migration"}
	for k, v := range extra {
		data[k] = v
	}
	resp := expectOK(e.t, e.doAs(entity, logical.UpdateOperation, "requests", data))
	if resp.Data["state"] != requestPending {
		e.t.Fatalf("new request state = %v", resp.Data["state"])
	}
	return resp.Data["approval_id"].(string)
}

func TestApprovalSeparationOfDuties(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "gated", map[string]interface{}{"requires_approval": true})
	issue := func(entity, name, reqID string) *logical.Response {
		return e.doAs(entity, logical.CreateOperation, "keys/billing/"+name, map[string]interface{}{"role": "gated", "approval_id": reqID})
	}

	expectErr(t, issue("alice", "k1", ""), "requires approval")
	id := e.newRequest("alice", "billing", "gated", "k1", nil)
	expectErr(t, issue("alice", "k1", id), "pending")

	// The requester cannot approve, nor can a token without an entity.
	expectErr(t, e.doAs("alice", logical.UpdateOperation, "requests/"+id+"/approve", nil), "separation of duties")
	expectErr(t, e.doAs("", logical.UpdateOperation, "requests/"+id+"/approve", nil), "no Vault identity entity")
	resp := expectOK(t, e.doAs("bob", logical.UpdateOperation, "requests/"+id+"/approve", map[string]interface{}{"comment": "ok"}))
	if resp.Data["state"] != requestApproved {
		t.Fatalf("state after approve = %v", resp.Data["state"])
	}
	// Deciding twice is refused.
	expectErr(t, e.doAs("carol", logical.UpdateOperation, "requests/"+id+"/deny", nil), "not pending")

	// The approver cannot issue with it; a third party cannot either.
	expectErr(t, issue("bob", "k1", id), "approved request")
	expectErr(t, issue("carol", "k1", id), "only its requester")
	// A request for another key name does not fit.
	expectErr(t, issue("alice", "other", id), "not billing/other")

	resp = expectOK(t, issue("alice", "k1", id))
	if resp.Data["key"] == "" {
		t.Fatal("no key issued")
	}
	// Single use.
	expectErr(t, issue("alice", "k2", id), "already used")
	got := expectOK(t, e.doAs("alice", logical.ReadOperation, "requests/"+id, nil))
	if got.Data["state"] != requestUsed || got.Data["used_by"] == nil {
		t.Fatalf("request after use: %v", got.Data)
	}

	// Lifecycle log records creation, approval and use.
	types := e.logTypes()
	for _, want := range []string{eventlog.RequestCreated, eventlog.RequestApproved, eventlog.RequestUsed, eventlog.KeyIssued} {
		if !slices.Contains(types, want) {
			t.Fatalf("log lacks %s: %v", want, types)
		}
	}
}

func TestApprovalExpiresAndDenied(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "gated", map[string]interface{}{"requires_approval": true})
	id := e.newRequest("alice", "billing", "gated", "k1", map[string]interface{}{"ttl": "1h"})
	expectOK(t, e.doAs("bob", logical.UpdateOperation, "requests/"+id+"/approve", nil))
	e.clock.Advance(time.Hour)
	expectErr(t, e.doAs("alice", logical.CreateOperation, "keys/billing/k1", map[string]interface{}{"role": "gated", "approval_id": id}), "expired")

	// A pending request expires too and can no longer be approved.
	id2 := e.newRequest("alice", "billing", "gated", "k1", nil)
	e.clock.Advance(25 * time.Hour)
	expectErr(t, e.doAs("bob", logical.UpdateOperation, "requests/"+id2+"/approve", nil), "expired")

	id3 := e.newRequest("alice", "billing", "gated", "k1", nil)
	expectOK(t, e.doAs("alice", logical.UpdateOperation, "requests/"+id3+"/deny", map[string]interface{}{"comment": "withdrawn"}))
	expectErr(t, e.doAs("alice", logical.CreateOperation, "keys/billing/k1", map[string]interface{}{"role": "gated", "approval_id": id3}), "denied")

	list := expectOK(t, e.doAs("alice", logical.ListOperation, "requests/", map[string]interface{}{"state": "expired"}))
	if keys := list.Data["keys"].([]string); len(keys) != 2 {
		t.Fatalf("expired requests = %v", keys)
	}
	list = expectOK(t, e.doAs("alice", logical.ListOperation, "requests/", nil))
	if keys := list.Data["keys"].([]string); len(keys) != 3 {
		t.Fatalf("all requests = %v", keys)
	}
}

func TestApprovalRequestValidation(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "open", nil)
	e.ok(logical.CreateOperation, "roles/gated", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "requires_approval": true})
	cases := []struct {
		data map[string]interface{}
		want string
	}{
		{map[string]interface{}{"role": "gated", "name": "k", "justification": "x"}, "client is required"},
		{map[string]interface{}{"client": "billing", "role": "gated", "justification": "x"}, "name is required"},
		{map[string]interface{}{"client": "billing", "role": "gated", "name": "k"}, "justification is required"},
		{map[string]interface{}{"client": "nobody", "role": "gated", "name": "k", "justification": "x"}, "does not exist"},
		{map[string]interface{}{"client": "billing", "role": "open", "name": "k", "justification": "x"}, "does not require approval"},
		{map[string]interface{}{"client": "billing", "role": "gated", "name": "k", "justification": "x", "ttl": "30d"}, "ttl must be"},
	}
	for _, c := range cases {
		expectErr(t, e.doAs("alice", logical.UpdateOperation, "requests", c.data), c.want)
	}
	// A token without an entity (root) cannot request: separation of
	// duties could not tell its author from the approver.
	expectErr(t, e.doAs("", logical.UpdateOperation, "requests", map[string]interface{}{
		"client": "billing", "role": "gated", "name": "k", "justification": "x",
	}), "no Vault identity entity")
	if got := e.storageKeys(); containsPrefix(got, storageRequestPrefix) {
		t.Fatalf("refused requests were stored: %v", got)
	}
	expectErr(t, e.doAs("bob", logical.UpdateOperation, "requests/req_missing/approve", nil), "does not exist")
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// logTypes returns the lifecycle-log event types in order.
func (e *testEnv) logTypes() []string {
	e.t.Helper()
	resp := e.ok(logical.ReadOperation, "log", map[string]interface{}{"after": 0, "limit": 1000})
	var out []string
	for _, ev := range resp.Data["entries"].([]map[string]interface{}) {
		out = append(out, ev["type"].(string))
	}
	return out
}

// An approval_id on a role without requires_approval is refused: the key.issued
// event would otherwise name an approval nobody checked.
func TestRequestIDRefusedWithoutApproval(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	before := len(e.storageKeys())
	e.userErr(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r", "approval_id": "req_forged"}, "does not require approval")
	if after := len(e.storageKeys()); after != before {
		t.Fatalf("a refused issuance wrote storage: %d -> %d entries", before, after)
	}
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
}

// issueWithApproval issues keys/billing/<name> under role gated as entity
// with approval_id id, returning the handler's error (an injected failure)
// instead of failing the test on it.
func (e *testEnv) issueWithApproval(entity, name, id string) (*logical.Response, error) {
	return e.b.HandleRequest(e.ctx, &logical.Request{
		Operation: logical.CreateOperation, Path: "keys/billing/" + name, Storage: e.storage,
		EntityID: entity, DisplayName: "userpass-" + entity, ID: "req-issue-" + name,
		Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
		Data:       map[string]interface{}{"role": "gated", "approval_id": id},
	})
}

// approvedRequest creates a request by alice for billing/<name> under role
// gated and has bob approve it.
func (e *testEnv) approvedRequest(name string) string {
	e.t.Helper()
	id := e.newRequest("alice", "billing", "gated", name, nil)
	expectOK(e.t, e.doAs("bob", logical.UpdateOperation, "requests/"+id+"/approve", nil))
	return id
}

// An issuance whose key commit fails leaves the approval approved and
// usable, with no request.used in the log; the retry uses it, once.
func TestApprovalSurvivesFailedIssuance(t *testing.T) {
	for _, step := range []string{"wal", "index"} {
		t.Run(step, func(t *testing.T) {
			e := newTestEnv(t)
			e.setupClientRole("billing", "internal", "gated", map[string]interface{}{"requires_approval": true})
			id := e.approvedRequest("main")
			e.b.commitHook = func(s string) error {
				if s == step {
					return errors.New("storage unavailable")
				}
				return nil
			}
			if resp, err := e.issueWithApproval("alice", "main", id); err == nil {
				t.Fatalf("issuance with a failing commit succeeded: %v", resp)
			}
			e.b.commitHook = nil
			if e.keyExists("billing", "main") {
				t.Fatal("a key was stored by the failed issuance")
			}
			got := expectOK(t, e.doAs("alice", logical.ReadOperation, "requests/"+id, nil))
			if got.Data["state"] != requestApproved || got.Data["used_by"] != nil {
				t.Fatalf("request after a failed issuance: %v", got.Data)
			}
			if used := e.logEventsOf(eventlog.RequestUsed); len(used) != 0 {
				t.Fatalf("the log shows a use that produced no key: %+v", used)
			}

			resp := expectOK(t, e.doAs("alice", logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "gated", "approval_id": id}))
			keyID := resp.Data["key_id"]
			got = expectOK(t, e.doAs("alice", logical.ReadOperation, "requests/"+id, nil))
			if got.Data["state"] != requestUsed || got.Data["key_id"] != keyID {
				t.Fatalf("request after the retry: %v (key %v)", got.Data, keyID)
			}
			used := e.logEventsOf(eventlog.RequestUsed)
			if len(used) != 1 || used[0].KeyID != keyID || used[0].Actor.EntityID != "alice" {
				t.Fatalf("request.used entries after the retry: %+v", used)
			}
			expectErr(t, e.doAs("alice", logical.CreateOperation, "keys/billing/other", map[string]interface{}{"role": "gated", "approval_id": id}), "already used")
		})
	}
}

// A crash after the key was stored but before the request was marked used
// leaves a key and an approved request bound to it: the request counts as
// used from then on (read, list, and any further use), and the use is
// logged once, attributed to the key's issuer.
func TestApprovalUsedOnceKeyCommittedDespiteCrash(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "gated", map[string]interface{}{"requires_approval": true})
	id := e.approvedRequest("main")
	e.b.commitHook = func(s string) error {
		if s == "key" {
			return errors.New("simulated crash after the key record")
		}
		return nil
	}
	if _, err := e.issueWithApproval("alice", "main", id); err == nil {
		t.Fatal("issuance with a crash succeeded")
	}
	e.restart() // the plugin died: its in-memory reservation is gone
	k := e.issued("billing", "main")
	stored, err := getRequest(e.ctx, e.storage, id)
	if err != nil || stored.State != requestApproved || stored.KeyID != k.KeyID {
		t.Fatalf("stored request after the crash: %+v %v (key %s)", stored, err, k.KeyID)
	}

	got := expectOK(t, e.doAs("alice", logical.ReadOperation, "requests/"+id, nil))
	if got.Data["state"] != requestUsed || got.Data["key_id"] != k.KeyID {
		t.Fatalf("request read after the crash: %v", got.Data)
	}
	list := expectOK(t, e.doAs("alice", logical.ListOperation, "requests/", map[string]interface{}{"state": requestUsed}))
	if keys := list.Data["keys"].([]string); len(keys) != 1 || keys[0] != id {
		t.Fatalf("used requests listed after the crash: %v", keys)
	}
	if used := e.logEventsOf(eventlog.RequestUsed); len(used) != 0 {
		t.Fatalf("reads wrote the log: %+v", used)
	}

	expectErr(t, e.doAs("alice", logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "gated", "approval_id": id}), "already exists")
	expectErr(t, e.doAs("alice", logical.CreateOperation, "keys/billing/other", map[string]interface{}{"role": "gated", "approval_id": id}), "already used")
	stored, _ = getRequest(e.ctx, e.storage, id)
	if stored.State != requestUsed || stored.UsedBy == nil || stored.UsedBy.EntityID != "alice" || !stored.UsedAt.Equal(k.CreatedAt) {
		t.Fatalf("request not settled as used by the key's issuer: %+v", stored)
	}
	used := e.logEventsOf(eventlog.RequestUsed)
	if len(used) != 1 || used[0].KeyID != k.KeyID || used[0].Actor.EntityID != "alice" || used[0].Details["approval_id"] != id {
		t.Fatalf("request.used entries: %+v", used)
	}
	expectErr(t, e.doAs("alice", logical.CreateOperation, "keys/billing/other", map[string]interface{}{"role": "gated", "approval_id": id}), "already used")
	if used := e.logEventsOf(eventlog.RequestUsed); len(used) != 1 {
		t.Fatalf("the use was logged again: %+v", used)
	}
	e.logValid()
}

// While an issuance holds an approval, no other can take it; once that
// issuance ends without a key, the approval can be used again.
func TestApprovalReservedForOneIssuanceAtATime(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "gated", map[string]interface{}{"requires_approval": true})
	id := e.approvedRequest("main")
	req := &logical.Request{Storage: e.storage, EntityID: "alice", ID: "req-1"}
	in := approvalTarget{client: "billing", name: "main", role: "gated", approvalID: id}
	first, err := e.b.reserveApproval(e.ctx, req, in)
	if err != nil {
		t.Fatalf("first reservation: %v", err)
	}
	var ue *userError
	if _, err := e.b.reserveApproval(e.ctx, req, in); !errors.As(err, &ue) || !strings.Contains(err.Error(), "being used by another issuance") {
		t.Fatalf("second reservation while the first holds it: %v", err)
	}
	first.release()
	second, err := e.b.reserveApproval(e.ctx, req, in)
	if err != nil {
		t.Fatalf("reservation after the first ended without a key: %v", err)
	}
	second.release()

	// Concurrent issuances with the one approval: exactly one key.
	const n = 8
	var wg sync.WaitGroup
	var okCount atomic.Int32
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.issueWithApproval("alice", "main", id)
			if err == nil && resp != nil && !resp.IsError() {
				okCount.Add(1)
			}
		}()
	}
	wg.Wait()
	if okCount.Load() != 1 || len(e.logEventsOf(eventlog.RequestUsed)) != 1 {
		t.Fatalf("%d of %d concurrent issuances with one approval succeeded; %d uses logged", okCount.Load(), n, len(e.logEventsOf(eventlog.RequestUsed)))
	}
}
