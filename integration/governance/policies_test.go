package governance

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// loadBootstrapPolicies writes every bootstrap/policies/*.hcl into Vault as
// apikeys-<name>, as `make dev` does.
func loadBootstrapPolicies(t *testing.T) []string {
	t.Helper()
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "bootstrap", "policies", "*.hcl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no bootstrap policies: %v", err)
	}
	var names []string
	for _, f := range files {
		rules, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := "apikeys-" + strings.TrimSuffix(filepath.Base(f), ".hcl")
		if err := client(t).Sys().PutPolicy(name, string(rules)); err != nil {
			t.Fatalf("policy %s: %v", name, err)
		}
		names = append(names, name)
	}
	return names
}

type call struct {
	op    string // read, list, write, delete
	path  string // relative to the mount
	data  map[string]interface{}
	allow bool
}

// try runs one call as u and asserts that Vault's ACL allowed it (any answer
// but 403) or denied it (403).
func try(t *testing.T, who string, u *user, m string, c call) *api.Secret {
	t.Helper()
	path := m + "/" + c.path
	var s *api.Secret
	var err error
	switch c.op {
	case "read":
		q := map[string][]string{}
		for k, v := range c.data {
			q[k] = []string{v.(string)}
		}
		s, err = u.c.Logical().ReadWithData(path, q)
	case "list":
		s, err = u.c.Logical().List(path)
	case "write":
		s, err = u.c.Logical().Write(path, c.data)
	case "delete":
		s, err = u.c.Logical().Delete(path)
	}
	denied := false
	if re, ok := err.(*api.ResponseError); ok && re.StatusCode == http.StatusForbidden {
		denied = true
	}
	switch {
	case c.allow && denied:
		t.Fatalf("%s: %s %s was denied, want allowed", who, c.op, c.path)
	case !c.allow && !denied:
		t.Fatalf("%s: %s %s was allowed (err %v), want denied", who, c.op, c.path, err)
	}
	return s
}

// Each bootstrap policy allows what its persona needs and denies the rest.
// The policies name the mount "apikeys", as `make dev` mounts it, so this
// test uses the server's default mount. A new secret of an existing key
// (read, rotate, stage, promote) goes only to those who may read the key:
// the client's application and operators, never an issuer.
func TestBootstrapPolicies(t *testing.T) {
	loadBootstrapPolicies(t)
	m := vaulttest.Shared.Mount
	setup(t, m, "billing", "r", nil)
	write(t, m+"/clients/other", map[string]interface{}{"owner": "team-other"})
	write(t, m+"/roles/gated", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "requires_approval": true})
	billingKey := issue(t, m, "billing", "main", "r")
	issue(t, m, "billing", "rot", "r")
	issue(t, m, "other", "main", "r")

	operator := newUser(t, "operator", []string{"apikeys-operator"}, nil)
	issuer := newUser(t, "issuer", []string{"apikeys-issuer"}, nil)
	approver := newUser(t, "approver", []string{"apikeys-approver"}, nil)
	app := newUser(t, "app", []string{"apikeys-application"}, map[string]string{"client": "billing"})
	stranger := newUser(t, "nometa", []string{"apikeys-application"}, nil)
	gateway := newUser(t, "gateway", []string{"apikeys-gateway"}, nil)
	boundGateway := newUser(t, "bound-gateway", []string{"apikeys-gateway-bound"}, nil)
	auditor := newUser(t, "auditor", []string{"apikeys-auditor"}, nil)
	logAuditor := newUser(t, "log-auditor", []string{"apikeys-log-auditor"}, nil)
	scraper := newUser(t, "metrics", []string{"apikeys-metrics"}, nil)

	// issuer: issue keys, ask for approval; no secret of an existing key
	// (no read, rotate, stage, promote, roll back, leased creds), no
	// approving, no revoking, no configuration.
	for _, c := range []call{
		{"write", "keys/billing/issued", map[string]interface{}{"role": "r"}, true},
		{"read", "inventory", nil, true},
		{"read", "inventory/export", nil, false},
		{"list", "requests", nil, true},
		{"list", "keys/billing", nil, true},
		{"read", "keys/billing/main", nil, false},
		{"read", "keys/billing/issued", nil, false},
		{"read", "keys/other/main", nil, false},
		{"write", "keys/billing/main", map[string]interface{}{"purpose": "overwrite"}, false},
		{"write", "keys/billing/issued/rotate", nil, false},
		{"write", "keys/other/main/rotate", nil, false},
		{"write", "keys/other/main/rotate", map[string]interface{}{"stage": true}, false},
		{"write", "keys/other/main/promote", nil, false},
		{"write", "keys/other/main/rollback", nil, false},
		{"read", "creds/other/r", nil, false},
		{"write", "creds/other/r", nil, false},
		{"write", "keys/billing/main/revoke", nil, false},
		{"write", "config", map[string]interface{}{"entropy_bits": 256}, false},
		{"write", "roles/r", map[string]interface{}{"scopes": "admin:*"}, false},
		{"delete", "clients/billing", nil, false},
		{"read", "log", nil, false},
		{"write", "requests/req_x/approve", nil, false},
		{"read", "notifications/deliveries", nil, false},
		{"list", "notifications/endpoints", nil, false},
		{"write", "notifications/endpoints/hook", map[string]interface{}{"url": "https://hooks.example.com", "event_types": "*"}, false},
		{"write", "responses/lock", map[string]interface{}{"alert_types": "leak_reported", "action": "lock_client"}, false},
	} {
		try(t, "issuer", issuer, m, c)
	}
	req := try(t, "issuer", issuer, m, call{"write", "requests", map[string]interface{}{"client": "billing", "role": "gated", "name": "gated-key", "justification": "test"}, true})
	reqID := req.Data["approval_id"].(string)

	// approver: decide requests; no issuing, no secrets.
	for _, c := range []call{
		{"list", "requests", nil, true},
		{"read", "requests/" + reqID, nil, true},
		{"write", "requests/" + reqID + "/approve", nil, true},
		{"write", "keys/billing/sneaky", map[string]interface{}{"role": "r"}, false},
		{"read", "keys/billing/main", nil, false},
		{"write", "keys/billing/main/rotate", nil, false},
		{"write", "config", map[string]interface{}{"entropy_bits": 256}, false},
	} {
		try(t, "approver", approver, m, c)
	}
	// The issuer then issues under the approval.
	try(t, "issuer", issuer, m, call{"write", "keys/billing/gated-key", map[string]interface{}{"role": "gated", "approval_id": reqID}, true})

	// application: only its own client's keys; it reads them and may
	// rotate and promote them.
	got := try(t, "application", app, m, call{"read", "keys/billing/main", nil, true})
	if got == nil || got.Data["key"] != billingKey {
		t.Fatalf("application read of its own key: %v", got)
	}
	rotated := try(t, "application", app, m, call{"write", "keys/billing/rot/rotate", nil, true})
	if active, code := verify(t, m, rotated.Data["key"].(string), nil); !active {
		t.Fatalf("the key the application rotated does not verify: %s", code)
	}
	if got := try(t, "application", app, m, call{"read", "keys/billing/rot", nil, true}); got.Data["key"] != rotated.Data["key"] {
		t.Fatalf("application read after its rotation: %v", got.Data)
	}
	for _, c := range []call{
		{"list", "keys/billing", nil, true},
		{"write", "keys/billing/rot/rotate", map[string]interface{}{"stage": true}, true},
		{"write", "keys/billing/rot/promote", nil, true},
		{"read", "keys/other/main", nil, false},
		{"list", "keys/other", nil, false},
		{"write", "keys/other/main/rotate", nil, false},
		{"write", "keys/other/main/rotate", map[string]interface{}{"stage": true}, false},
		{"write", "keys/other/main/promote", nil, false},
		{"write", "keys/billing/main/revoke", nil, false},
		{"write", "keys/billing/main/rollback", nil, false},
		{"write", "keys/billing/main/enable", nil, false},
		{"write", "keys/billing/main/disable", map[string]interface{}{"reason": "x"}, false},
		{"delete", "clients/billing/restriction", nil, false},
		{"delete", "keys/billing/main", nil, false},
		{"write", "keys/billing/new", map[string]interface{}{"role": "r"}, false},
		{"read", "inventory", nil, false},
		{"write", "verify", map[string]interface{}{"key": billingKey}, false},
	} {
		try(t, "application", app, m, c)
	}
	// A role that requires approval: the ACL lets the application try,
	// the plugin wants an approved request (a 400).
	_, err := app.write(m+"/keys/billing/gated-key/rotate", nil)
	vaulttest.ExpectStatus(t, err, http.StatusBadRequest, "requires approval")
	// Without client metadata on its entity, the template grants nothing.
	try(t, "application without client metadata", stranger, m, call{"read", "keys/billing/main", nil, false})
	try(t, "application without client metadata", stranger, m, call{"write", "keys/billing/main/rotate", nil, false})

	// gateway: verify only.
	v := try(t, "gateway", gateway, m, call{"write", "verify", map[string]interface{}{"key": billingKey}, true})
	if v.Data["active"] != true {
		t.Fatalf("gateway verify: %v", v.Data)
	}
	// The proxy form: read only. Allowed here means the plugin answered
	// (401: no X-Api-Key header), not Vault's ACL 403.
	for _, c := range []call{
		{"read", "verify/authorize", nil, true},
		{"read", "verify/authorize", map[string]interface{}{"audience": "orders-api", "scope": "orders:read"}, true},
		{"write", "verify/authorize", nil, false},
	} {
		try(t, "gateway", gateway, m, c)
	}
	// A gateway bound to its audience, on both forms.
	for _, c := range []call{
		{"read", "verify/authorize", map[string]interface{}{"audience": "orders-api"}, true},
		{"read", "verify/authorize", map[string]interface{}{"audience": "orders-api", "scope": "orders:read"}, true},
		{"read", "verify/authorize", map[string]interface{}{"audience": "billing-api"}, false},
		{"read", "verify/authorize", nil, false},
		{"write", "verify", map[string]interface{}{"key": billingKey, "audience": "orders-api"}, true},
		{"write", "verify", map[string]interface{}{"key": billingKey, "audience": "billing-api"}, false},
		{"write", "verify", map[string]interface{}{"key": billingKey}, false},
		{"read", "keys/billing/main", nil, false},
	} {
		try(t, "bound gateway", boundGateway, m, c)
	}
	for _, c := range []call{
		{"read", "keys/billing/main", nil, false},
		{"write", "keys/billing/main/rotate", nil, false},
		{"read", "inventory", nil, false},
		{"read", "log", nil, false},
		{"write", "leaks", map[string]interface{}{"key": "x"}, false},
		{"write", "token", map[string]interface{}{"key": billingKey, "audience": "orders"}, false},
		{"read", "notifications/deliveries", nil, false},
		{"read", "responses/lock", nil, false},
		{"list", "operations", nil, false},
		{"write", "operations", map[string]interface{}{"action": "revoke", "all": true, "reason": "x"}, false},
	} {
		try(t, "gateway", gateway, m, c)
	}

	// auditor: read the log, inventory, metrics, policy, alerts; no
	// secrets, no changes.
	for _, c := range []call{
		{"read", "log", nil, true},
		{"write", "log/verify", nil, true},
		{"read", "inventory", nil, true},
		{"read", "inventory/export", map[string]interface{}{"format": "jsonl"}, true},
		{"read", "clients/billing/restriction", nil, true},
		{"write", "clients/billing/restriction", map[string]interface{}{"scopes": "x", "ttl": "1h", "reason": "x"}, false},
		{"write", "keys/billing/main/disable", map[string]interface{}{"reason": "x"}, false},
		{"read", "metrics", nil, true},
		{"read", "metrics", map[string]interface{}{"format": "prometheus"}, true},
		{"read", "policy", nil, true},
		{"read", "alerts", nil, true},
		{"list", "alerts", nil, true},
		{"read", "clients/billing/revocations", nil, true},
		{"read", "config", nil, true},
		{"list", "requests", nil, true},
		{"read", "notifications/config", nil, true},
		{"read", "notifications/deliveries", nil, true},
		{"list", "notifications/endpoints", nil, true},
		{"read", "notifications/endpoints/hook", nil, true},
		{"list", "responses", nil, true},
		{"read", "responses/lock", nil, true},
		{"read", "keys/billing/main", nil, false},
		{"write", "keys/billing/main/rotate", nil, false},
		{"write", "alerts/x/ack", nil, false},
		{"write", "config", map[string]interface{}{"entropy_bits": 256}, false},
		{"write", "clients/billing/lock", nil, false},
		{"write", "leaks", map[string]interface{}{"key": "x"}, false},
		{"write", "verify", map[string]interface{}{"key": billingKey}, false},
		{"read", "verify/authorize", nil, false},
		{"write", "tidy", nil, false},
		{"write", "notifications/config", map[string]interface{}{"allow_private": true}, false},
		{"write", "notifications/endpoints/hook", map[string]interface{}{"url": "https://evil.example.com", "event_types": "*"}, false},
		{"write", "notifications/endpoints/hook/rotate-secret", nil, false},
		{"write", "notifications/endpoints/hook/replay", map[string]interface{}{"seq": 1}, false},
		{"delete", "notifications/endpoints/hook", nil, false},
		{"write", "responses/lock", map[string]interface{}{"action": "notify"}, false},
		{"list", "operations", nil, true},
		{"read", "operations/x", nil, true},
		{"write", "operations", map[string]interface{}{"action": "revoke", "client": "billing", "reason": "x"}, false},
		{"write", "operations/x/cancel", nil, false},
		{"read", "log/checkpoint", nil, true},
		{"read", "log/proof/consistency", map[string]interface{}{"from": "1"}, true},
		{"read", "log/export", nil, true},
		{"read", "log/config", nil, true},
		{"write", "log/checkpoint", nil, false},
		{"write", "log/config", map[string]interface{}{"retention": "24h"}, false},
		{"write", "log/archive", map[string]interface{}{"through": 1, "through_hash": "x"}, false},
	} {
		try(t, "auditor", auditor, m, c)
	}

	// log-auditor: checkpoints and proofs, nothing else.
	try(t, "operator", operator, m, call{"write", "log/checkpoint", nil, true})
	for _, c := range []call{
		{"read", "log/checkpoint", nil, true},
		{"read", "log/proof/consistency", map[string]interface{}{"from": "1"}, true},
		{"read", "log/proof/inclusion", map[string]interface{}{"seq": "1"}, true},
		{"write", "log/checkpoint", nil, false},
		{"read", "log", nil, false},
		{"read", "log/export", nil, false},
		{"write", "log/verify", nil, false},
		{"read", "log/config", nil, false},
		{"write", "log/archive", map[string]interface{}{"through": 1, "through_hash": "x"}, false},
		{"read", "inventory", nil, false},
		{"read", "keys/billing/main", nil, false},
		{"read", "metrics", nil, false},
		{"read", "config", nil, false},
		{"list", "clients", nil, false},
		{"write", "verify", map[string]interface{}{"key": billingKey}, false},
		{"read", "verify/authorize", nil, false},
	} {
		try(t, "log-auditor", logAuditor, m, c)
	}

	// metrics (a Prometheus scraper): the metrics, nothing else.
	for _, c := range []call{
		{"read", "metrics", map[string]interface{}{"format": "prometheus"}, true},
		{"read", "metrics", nil, true},
		{"read", "inventory", nil, false},
		{"read", "alerts", nil, false},
		{"read", "log", nil, false},
		{"read", "config", nil, false},
		{"write", "config", map[string]interface{}{"metrics_clients": "billing"}, false},
		{"list", "clients", nil, false},
		{"read", "keys/billing/main", nil, false},
		{"write", "verify", map[string]interface{}{"key": billingKey}, false},
	} {
		try(t, "metrics", scraper, m, c)
	}

	// operator: runs the mount and responds to incidents, but never
	// approves (separation of duties).
	for _, c := range []call{
		{"write", "config", map[string]interface{}{"review_period": "2160h"}, true},
		{"write", "clients/newclient", map[string]interface{}{"owner": "team-new"}, true},
		{"write", "roles/r2", map[string]interface{}{"scopes": "orders:read", "environment": "prod"}, true},
		{"read", "keys/billing/main", nil, true},
		{"write", "keys/other/main/rotate", nil, true},
		{"write", "clients/other/lock", map[string]interface{}{"reason": "drill"}, true},
		{"write", "clients/other/unlock", nil, true},
		{"write", "leaks", map[string]interface{}{"key": "junk"}, true},
		{"list", "alerts", nil, true},
		{"write", "alerts/x/ack", nil, true}, // allowed by ACL; 400 as x does not exist
		{"read", "metrics", nil, true},
		{"read", "log", nil, true},
		{"read", "policy", nil, true},
		{"write", "tidy", nil, true},
		{"write", "notifications/config", map[string]interface{}{"retry_window": "12h"}, true},
		{"write", "notifications/endpoints/hook", map[string]interface{}{"url": "https://hooks.example.com/apikeys", "event_types": "alert.*"}, true},
		{"list", "notifications/endpoints", nil, true},
		{"read", "notifications/deliveries", nil, true},
		{"write", "notifications/endpoints/hook/rotate-secret", nil, true},
		{"write", "notifications/endpoints/hook/replay", map[string]interface{}{"seq": 1}, true},
		{"write", "responses/lock", map[string]interface{}{"alert_types": "leak_reported", "action": "lock_client"}, true},
		{"list", "responses", nil, true},
		{"write", "requests/" + reqID + "/deny", nil, true}, // allowed by ACL; 400 as it is used
		{"write", "requests/" + reqID + "/approve", nil, false},
		{"write", "operations", map[string]interface{}{"action": "revoke", "client": "nobody", "reason": "drill", "dry_run": true}, true},
		{"write", "operations", map[string]interface{}{"action": "lock", "client": "nobody", "reason": "drill"}, true},
		{"list", "operations", nil, true},
		{"read", "operations/x", nil, true},
		{"write", "operations/x/cancel", nil, true}, // allowed by ACL; 400 as x does not exist
		{"read", "inventory/export", map[string]interface{}{"format": "csv"}, true},
		{"write", "keys/other/main/disable", map[string]interface{}{"reason": "drill"}, true},
		{"write", "keys/other/main/enable", nil, true},
		{"write", "clients/other/restriction", map[string]interface{}{"scopes": "orders:read", "ttl": "1h", "reason": "drill"}, true},
		{"delete", "clients/other/restriction", nil, true},
		{"write", "log/config", map[string]interface{}{"checkpoint_interval": "2h"}, true},
		{"read", "log/export", nil, true},
		{"write", "log/archive", map[string]interface{}{"through": 1, "through_hash": "x"}, true}, // allowed by ACL; 400 as retention is 0
	} {
		try(t, "operator", operator, m, c)
	}

	// Rotating a key of a role that requires approval takes an approved
	// request made by the rotating entity, used once.
	_, err = operator.write(m+"/keys/billing/gated-key/rotate", nil)
	vaulttest.ExpectStatus(t, err, http.StatusBadRequest, "requires approval")
	rot := try(t, "operator", operator, m, call{"write", "requests", map[string]interface{}{"client": "billing", "role": "gated", "name": "gated-key", "justification": "suspected exposure"}, true})
	rotID := rot.Data["approval_id"].(string)
	_, err = operator.write(m+"/keys/billing/gated-key/rotate", map[string]interface{}{"approval_id": rotID})
	vaulttest.ExpectStatus(t, err, http.StatusBadRequest, "must be approved")
	try(t, "approver", approver, m, call{"write", "requests/" + rotID + "/approve", nil, true})
	s, err := operator.write(m+"/keys/billing/gated-key/rotate", map[string]interface{}{"approval_id": rotID})
	if err != nil {
		t.Fatalf("approved rotation: %v", err)
	}
	if active, code := verify(t, m, s.Data["key"].(string), nil); !active {
		t.Fatalf("the approved rotation's key does not verify: %s", code)
	}
	_, err = operator.write(m+"/keys/billing/gated-key/rotate", map[string]interface{}{"approval_id": rotID})
	vaulttest.ExpectStatus(t, err, http.StatusBadRequest, "already used")
	_, err = operator.write(m+"/keys/billing/gated-key/rotate", map[string]interface{}{"approval_id": rotID, "stage": true})
	vaulttest.ExpectStatus(t, err, http.StatusBadRequest, "already used")
	if r := read(t, m+"/requests/"+rotID); r.Data["state"] != "used" || vaulttest.Num(t, r.Data["key_version"]) != 2 {
		t.Fatalf("the rotation's request: %v", r.Data)
	}
}
