package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"
)

// respEnv runs requests like testEnv.ok and checks each successful answer
// against the Responses its path declares, strictly: a field the handler
// returns but the schema does not declare fails, as does a wrong type.
type respEnv struct {
	*testEnv
	seen map[*framework.Path]map[logical.Operation]bool
}

func (r *respEnv) check(op logical.Operation, path string, data map[string]interface{}) *logical.Response {
	r.t.Helper()
	req := &logical.Request{
		Operation: op, Path: path, Data: data, Storage: r.storage,
		EntityID: "entity-alice", DisplayName: "userpass-alice", ClientTokenAccessor: "accessor-alice",
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
	if r.seen[route] == nil {
		r.seen[route] = map[logical.Operation]bool{}
	}
	r.seen[route][op] = true
	return resp
}

// TestResponsesKeysRolesClients drives every operation of the role, client
// and key paths and validates each answer against its declared schema.
func TestResponsesKeysRolesClients(t *testing.T) {
	r := &respEnv{testEnv: newTestEnv(t), seen: map[*framework.Path]map[logical.Operation]bool{}}
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
	r.check(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	r.check(logical.UpdateOperation, "keys/svc/k/rotate", map[string]interface{}{"stage": true})
	r.check(logical.UpdateOperation, "keys/svc/k/promote", nil)
	r.check(logical.UpdateOperation, "keys/svc/k/rollback", nil)
	r.check(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"version": 1, "reason": "suspected exposure"})
	r.check(logical.ReadOperation, "keys/svc/k", nil)
	r.check(logical.CreateOperation, "keys/svc/other", map[string]interface{}{"role": "r"})
	r.check(logical.DeleteOperation, "keys/svc/other", nil)
	r.check(logical.ReadOperation, "clients/svc/revocations", nil)
	r.check(logical.DeleteOperation, "clients/svc", nil)
	r.check(logical.ReadOperation, "clients/svc/revocations", nil)

	// Every operation of the paths driven above was driven, so an
	// operation added to them later is checked too.
	for p, ops := range r.seen {
		for op := range p.Operations {
			if !ops[op] {
				t.Errorf("%s %s: not driven by this test", op, p.Pattern)
			}
		}
	}
}
