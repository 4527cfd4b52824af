package backend

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
)

// respEnv runs requests like testEnv.ok and checks each successful answer
// against the Responses its path declares, strictly: a field the handler
// returns but the schema does not declare fails, as does a wrong type.
type respEnv struct {
	*testEnv
	seen map[string]map[logical.Operation]bool // by path pattern
}

func (r *respEnv) check(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	r.t.Helper()
	return r.checkAs("alice", op, path, data)
}

func (r *respEnv) checkAs(who string, op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	r.t.Helper()
	req := &logical.Request{
		Operation: op, Path: path, Data: data, Storage: r.storage,
		EntityID: "entity-" + who, DisplayName: "userpass-" + who, ClientTokenAccessor: "accessor-" + who,
		ID: "req-" + path, Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	}
	resp, err := r.b.HandleRequest(r.ctx, req)
	if err != nil || (resp != nil && resp.IsError()) {
		r.t.Fatalf("%s %s: %v %v", op, path, err, resp)
	}
	route := r.b.Route(path)
	if route == nil {
		r.t.Fatalf("no route for %s", path)
	}
	schema.ValidateResponse(r.t, schema.GetResponseSchema(r.t, route, op), resp, true)
	pattern := strings.TrimPrefix(route.Pattern, "^") // the router anchors patterns when it first routes
	if r.seen[pattern] == nil {
		r.seen[pattern] = map[logical.Operation]bool{}
	}
	r.seen[pattern][op] = true
	return resp
}

// callbackPaths answer through framework.Path.Callbacks, which cannot
// declare Responses: verify and info use Callbacks on purpose (see
// path_verify.go: no replication-state wait on the hot path).
var callbackPaths = map[string]bool{"verify$": true, "verify/authorize$": true, "info$": true}

// TestResponses drives every operation of every path, validates each
// answer strictly against the Responses its operation declares, and fails
// for an operation that declares none or that the run does not drive, so
// a new path or operation cannot go without a checked schema.
func TestResponses(t *testing.T) {
	seen := map[string]map[logical.Operation]bool{}
	t.Run("keys_roles_clients", func(t *testing.T) { driveKeysRolesClients(newRespEnv(t, seen)) })
	t.Run("governance", func(t *testing.T) { driveGovernance(newRespEnv(t, seen)) })
	t.Run("notifications", func(t *testing.T) { driveNotifications(newRespEnv(t, seen)) })
	t.Run("response_policies", func(t *testing.T) { driveResponsePolicies(newRespEnv(t, seen)) })
	t.Run("operations", func(t *testing.T) { driveOperations(newRespEnv(t, seen)) })
	if t.Failed() {
		return
	}
	for _, p := range newTestEnv(t).b.Paths {
		pattern := strings.TrimPrefix(p.Pattern, "^")
		if len(p.Callbacks) > 0 && !callbackPaths[pattern] {
			t.Errorf("%s: answers through Callbacks, which cannot declare Responses; use Operations", p.Pattern)
		}
		for op, h := range p.Operations {
			if len(h.Properties().Responses) == 0 {
				t.Errorf("%s %s: declares no Responses", op, p.Pattern)
			}
			if !seen[pattern][op] {
				t.Errorf("%s %s: not driven by TestResponses", op, p.Pattern)
			}
		}
	}
}

// driveKeysRolesClients drives the role, client and key paths.
func driveKeysRolesClients(r *respEnv) {
	r.check(logical.CreateOperation, "clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal", "metadata": "tier=1"})
	r.check(logical.UpdateOperation, "clients/svc", map[string]interface{}{"contact": "ops@example.com"})
	r.check(logical.ReadOperation, "clients/svc", nil)
	r.check(logical.ListOperation, "clients/", nil)
	r.check(logical.UpdateOperation, "clients/svc/lock", map[string]interface{}{"reason": "incident 7"})
	r.check(logical.ReadOperation, "clients/svc", nil)
	r.check(logical.UpdateOperation, "clients/svc/unlock", nil)

	r.check(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "rotation_period": "720h"})
	r.check(logical.UpdateOperation, "roles/r", map[string]interface{}{"description": "orders"})
	r.check(logical.ReadOperation, "roles/r", nil)
	r.check(logical.ListOperation, "roles/", nil)
	r.check(logical.CreateOperation, "roles/spare", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	r.check(logical.DeleteOperation, "roles/spare", nil)

	r.check(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r", "scopes": "orders:read", "purpose": "checkout", "metadata": "team=pay"})
	r.check(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"purpose": "checkout v2"})
	r.check(logical.ReadOperation, "keys/svc/k", nil)
	r.check(logical.ListOperation, "keys/svc/", nil)
	r.check(logical.ListOperation, "keys/svc/", map[string]interface{}{"limit": 1})
	r.check(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	r.check(logical.UpdateOperation, "keys/svc/k/rotate", map[string]interface{}{"stage": true})
	r.check(logical.UpdateOperation, "keys/svc/k/promote", nil)
	r.check(logical.UpdateOperation, "keys/svc/k/rollback", nil)
	r.check(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"version": 1, "reason": "suspected exposure"})
	r.check(logical.ReadOperation, "keys/svc/k", nil)
	r.check(logical.CreateOperation, "keys/svc/other", map[string]interface{}{"role": "r"})
	// per-key controls (key_controls_test.go tests their behaviour)
	r.check(logical.UpdateOperation, "keys/svc/other/disable", map[string]interface{}{"reason": "incident 8"})
	r.check(logical.ReadOperation, "keys/svc/other", nil)
	r.check(logical.UpdateOperation, "keys/svc/other/enable", nil)
	r.check(logical.UpdateOperation, "keys/svc/other", map[string]interface{}{"scopes": "orders:read", "expires_at": r.clock.Now().Add(time.Hour).Format(time.RFC3339)})
	r.check(logical.DeleteOperation, "keys/svc/other", nil)
	r.check(logical.UpdateOperation, "keys/svc/other", map[string]interface{}{"role": "r"})
	r.check(logical.DeleteOperation, "keys/svc/other", nil)
	r.check(logical.ReadOperation, "clients/svc/revocations", nil)
	r.check(logical.DeleteOperation, "clients/svc", nil)
	r.check(logical.ReadOperation, "clients/svc/revocations", nil)

}

func newRespEnv(t *testing.T, seen map[string]map[logical.Operation]bool) *respEnv {
	return &respEnv{testEnv: newTestEnv(t), seen: seen}
}

// driveGovernance drives every other path: config, creds, token, jwks,
// leaks, alerts, approval requests, log, inventory, metrics, policy and
// tidy. jwks and metrics?format=prometheus answer with a raw body, which
// ValidateResponse skips; TestJWKS* and TestMetrics* check those bodies.
func driveGovernance(r *respEnv) {
	if err := r.b.initialize(r.ctx, &logical.InitializationRequest{Storage: r.storage}); err != nil {
		r.t.Fatal(err)
	}
	r.check(logical.CreateOperation, "config", map[string]interface{}{"token_ttl": "2m"})
	r.check(logical.UpdateOperation, "config", map[string]interface{}{"token_issuer": "https://vault.test/v1/apikeys"})
	r.check(logical.ReadOperation, "config", nil)

	r.setupClientRole("acme", "external", "partner", map[string]interface{}{"ttl": "1h", "max_ttl": "4h", "audiences": "orders-api"})
	r.check(logical.ReadOperation, "creds/acme/partner", nil)
	r.setupClientRole("billing", "internal", "svc", map[string]interface{}{"audiences": "orders-api"})
	key := r.check(logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)
	r.check(logical.UpdateOperation, "token", map[string]interface{}{"key": key, "audience": "orders-api", "scope": "orders:read"})
	r.check(logical.CreateOperation, "clients/billing/restriction", map[string]interface{}{"scopes": "orders:read", "reason": "incident", "ttl": "1h"})
	r.check(logical.UpdateOperation, "clients/billing/restriction", map[string]interface{}{"rate_limit": 5, "reason": "tighten", "ttl": "2h"})
	r.check(logical.ReadOperation, "clients/billing/restriction", nil)
	r.check(logical.DeleteOperation, "clients/billing/restriction", nil)

	r.check(logical.ReadOperation, "jwks", nil)
	r.check(logical.UpdateOperation, "jwks/rotate", nil)
	r.check(logical.UpdateOperation, "jwks/rotate", nil)
	r.check(logical.UpdateOperation, "jwks/rotate", nil)
	kids := r.jwksKIDs()
	r.check(logical.UpdateOperation, "jwks/revoke", map[string]interface{}{"kid": kids[len(kids)-1]})

	leak := r.check(logical.UpdateOperation, "leaks", map[string]interface{}{
		"key": key, "reporter": "github-secret-scanning", "source": "https://example.com/repo/commit/1",
		"detected_at": testStart.Add(-90 * time.Second).Format(time.RFC3339),
	})
	alertID := leak.Data["alert_id"].(string)
	r.check(logical.ReadOperation, "alerts", nil)
	r.check(logical.ListOperation, "alerts/", nil)
	r.check(logical.ReadOperation, "alerts/"+alertID, nil)
	r.check(logical.UpdateOperation, "alerts/"+alertID+"/ack", map[string]interface{}{"note": "known"})

	r.check(logical.CreateOperation, "roles/gated", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "requires_approval": true})
	ask := func(name string) string {
		return r.check(logical.UpdateOperation, "requests", map[string]interface{}{
			"client": "billing", "role": "gated", "name": name, "justification": "needed for the orders migration",
		}).Data["approval_id"].(string)
	}
	approved, denied := ask("gated1"), ask("gated2")
	r.checkAs("bob", logical.UpdateOperation, "requests/"+approved+"/approve", map[string]interface{}{"comment": "ok"})
	r.checkAs("bob", logical.UpdateOperation, "requests/"+denied+"/deny", nil)
	r.check(logical.CreateOperation, "keys/billing/gated1", map[string]interface{}{"role": "gated", "approval_id": approved})
	r.check(logical.ReadOperation, "requests/"+approved, nil)
	r.check(logical.ListOperation, "requests/", nil)

	r.check(logical.ReadOperation, "log", nil)
	r.check(logical.ReadOperation, "log/verify", nil)
	r.check(logical.UpdateOperation, "log/verify", nil)
	r.check(logical.ReadOperation, "log/verify", map[string]interface{}{"limit": 1})
	r.check(logical.ReadOperation, "log/verify", map[string]interface{}{"incremental": true})
	r.check(logical.UpdateOperation, "log/config", map[string]interface{}{"checkpoint_interval": "2h", "retention": "8760h"})
	r.check(logical.ReadOperation, "log/config", nil)
	r.check(logical.UpdateOperation, "log/checkpoint", nil)
	r.check(logical.ReadOperation, "log/checkpoint", nil)
	r.check(logical.ReadOperation, "log/proof/inclusion", map[string]interface{}{"seq": 1})
	r.check(logical.ReadOperation, "log/proof/consistency", map[string]interface{}{"from": 1})
	r.check(logical.UpdateOperation, "log/config", map[string]interface{}{"retention": "24h"})
	r.clock.Advance(48 * time.Hour)
	first := r.check(logical.ReadOperation, "log/export", map[string]interface{}{"limit": 1}).Data["entries"].(string)
	var e struct{ Hash string }
	if err := json.Unmarshal([]byte(first), &e); err != nil {
		r.t.Fatalf("export line %q: %v", first, err)
	}
	r.check(logical.UpdateOperation, "log/archive", map[string]interface{}{"through": 1, "through_hash": e.Hash})
	r.check(logical.ReadOperation, "inventory", nil)
	r.check(logical.ReadOperation, "inventory", map[string]interface{}{"limit": 1})
	r.check(logical.ReadOperation, "inventory/export", map[string]interface{}{"format": "csv"})
	r.check(logical.ReadOperation, "metrics", nil)
	r.check(logical.ReadOperation, "metrics", map[string]interface{}{"format": "prometheus"})
	r.check(logical.ReadOperation, "policy", nil)
	r.check(logical.UpdateOperation, "tidy", nil)
	r.check(logical.DeleteOperation, "config", nil)
}
