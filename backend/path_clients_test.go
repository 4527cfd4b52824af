package backend

import (
	"errors"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestClientLifecycle(t *testing.T) {
	e := newTestEnv(t)
	resp := e.ok(logical.CreateOperation, "clients/billing", map[string]interface{}{
		"owner": "team-payments", "type": "external", "contact": "pay@example.com",
		"allowed_environments": "prod,staging", "bound_cidrs": "10.0.0.0/8", "metadata": "tier=gold",
	})
	if resp.Data["status"] != record.ClientActive || resp.Data["type"] != record.ClientExternal {
		t.Fatalf("unexpected client: %v", resp.Data)
	}
	// Partial update keeps the other fields.
	e.ok(logical.UpdateOperation, "clients/billing", map[string]interface{}{"description": "partner"})
	got := e.ok(logical.ReadOperation, "clients/billing", nil)
	if got.Data["owner"] != "team-payments" || got.Data["description"] != "partner" {
		t.Fatalf("update lost fields: %v", got.Data)
	}
	list := e.ok(logical.ListOperation, "clients/", nil)
	if keys := list.Data["keys"].([]string); len(keys) != 1 || keys[0] != "billing" {
		t.Fatalf("list = %v", list.Data)
	}
}

func TestClientBadInputStoresNothing(t *testing.T) {
	e := newTestEnv(t)
	before := len(e.storageKeys())
	cases := []struct {
		path string
		data map[string]interface{}
		want string
	}{
		{"clients/x", map[string]interface{}{"type": "internal"}, "owner is required"},
		{"clients/has space", map[string]interface{}{"owner": "o"}, "client name"},
		{"clients/-bad", map[string]interface{}{"owner": "o"}, "client name"},
		{"clients/x", map[string]interface{}{"owner": "o", "type": "partner"}, "type must be"},
		{"clients/x", map[string]interface{}{"owner": "o", "bound_cidrs": "10.0.0.0/33"}, "bound_cidrs"},
		{"clients/x", map[string]interface{}{"owner": "o", "allowed_environments": "Prod_1"}, "allowed_environments"},
	}
	for _, tc := range cases {
		e.userErr(logical.CreateOperation, tc.path, tc.data, tc.want)
	}
	if after := len(e.storageKeys()); after != before {
		t.Fatalf("rejected writes changed storage: %d keys before, %d after", before, after)
	}
}

func TestClientTypeIsFixed(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "clients/a", map[string]interface{}{"owner": "o", "type": "internal"})
	e.userErr(logical.UpdateOperation, "clients/a", map[string]interface{}{"type": "external"}, "cannot be changed")
}

func TestDeprovisionRevokesKeysAndKeepsTombstone(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.ok(logical.CreateOperation, "keys/svc/one", map[string]interface{}{"role": "r"})
	e.ok(logical.CreateOperation, "keys/svc/two", map[string]interface{}{"role": "r"})
	resp := e.ok(logical.DeleteOperation, "clients/svc", nil)
	if resp.Data["keys_revoked"] != 2 {
		t.Fatalf("keys_revoked = %v", resp.Data["keys_revoked"])
	}
	for _, n := range []string{"one", "two"} {
		k := e.ok(logical.ReadOperation, "keys/svc/"+n, nil)
		if k.Data["state"] != record.StateRevoked {
			t.Fatalf("key %s state %v after de-provisioning", n, k.Data["state"])
		}
	}
	c := e.ok(logical.ReadOperation, "clients/svc", nil)
	if c.Data["status"] != record.ClientDeprovisioned || c.Data["status_changed_by"] == nil {
		t.Fatalf("tombstone = %v", c.Data)
	}
	e.userErr(logical.UpdateOperation, "clients/svc", map[string]interface{}{"owner": "new"}, "de-provisioned")
	e.userErr(logical.CreateOperation, "keys/svc/three", map[string]interface{}{"role": "r"}, "deprovisioned")
	inv := e.ok(logical.ReadOperation, "inventory", nil)
	if ts := inv.Data["tombstones"].([]map[string]interface{}); len(ts) != 1 || ts[0]["client"] != "svc" {
		t.Fatalf("tombstones = %v", inv.Data["tombstones"])
	}
}

// A de-provisioning interrupted after the status write (a storage error
// while revoking keys) is finished by deleting the client again.
func TestDeprovisionCanBeFinishedAfterAFailure(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "internal", "r", nil)
	for _, n := range []string{"k1", "k2", "k3"} {
		e.ok(logical.CreateOperation, "keys/acme/"+n, map[string]interface{}{"role": "r"})
	}
	fail := true
	e.b.commitHook = func(step string) error {
		if fail && step == "key" {
			fail = false
			return errInjected
		}
		return nil
	}
	if _, err := e.doErr(logical.DeleteOperation, "clients/acme", nil); err == nil {
		t.Fatal("injected failure was not reported")
	}
	e.b.commitHook = nil
	resp := e.ok(logical.DeleteOperation, "clients/acme", nil)
	if resp.Data["keys_revoked"] != 2 {
		t.Fatalf("second delete revoked %v keys, want the 2 left", resp.Data["keys_revoked"])
	}
	for _, n := range []string{"k1", "k2", "k3"} {
		if st := e.ok(logical.ReadOperation, "keys/acme/"+n, nil).Data["state"]; st != record.StateRevoked {
			t.Fatalf("key %s is %v after de-provisioning finished", n, st)
		}
	}
}

var errInjected = errors.New("injected storage failure")
