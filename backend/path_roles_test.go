package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestRoleWriteReadDefaults(t *testing.T) {
	e := newTestEnv(t)
	resp := e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{
		"scopes": "orders:read, orders:*", "environment": "prod", "risk_tier": "high",
	})
	if resp.Data["rotation_period"] != int64(30*24*3600) || resp.Data["grace_period"] != int64(24*3600) {
		t.Fatalf("tier defaults not applied: %v", resp.Data)
	}
	if got := resp.Data["scopes"].([]string); len(got) != 2 || got[0] != "orders:*" {
		t.Fatalf("scopes = %v", got)
	}
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"rotation_period": "1m", "grace_period": "30s"})
	got := e.ok(logical.ReadOperation, "roles/r", nil)
	if got.Data["rotation_period"] != int64(60) || got.Data["grace_period"] != int64(30) || got.Data["environment"] != "prod" {
		t.Fatalf("update = %v", got.Data)
	}
}

func TestRoleBadInputStoresNothing(t *testing.T) {
	e := newTestEnv(t)
	before := len(e.storageKeys())
	base := func(extra map[string]interface{}) map[string]interface{} {
		d := map[string]interface{}{"scopes": "orders:read", "environment": "prod"}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	cases := []struct {
		name string
		data map[string]interface{}
		want string
	}{
		{"no scopes", map[string]interface{}{"environment": "prod"}, "scopes is required"},
		{"bad scope", base(map[string]interface{}{"scopes": "ord*"}), "scopes"},
		{"no environment", map[string]interface{}{"scopes": "a"}, "environment is required"},
		{"bad environment", base(map[string]interface{}{"environment": "prod_eu"}), "environment"},
		{"unknown tier", base(map[string]interface{}{"risk_tier": "extreme"}), "risk_tier"},
		{"period and schedule", base(map[string]interface{}{"rotation_period": "1h", "rotation_schedule": "@daily"}), "either rotation_period or rotation_schedule"},
		{"period too short", base(map[string]interface{}{"rotation_period": "30s"}), "rotation_period"},
		{"bad cron", base(map[string]interface{}{"rotation_schedule": "every day"}), "rotation_schedule"},
		{"window without cron", base(map[string]interface{}{"rotation_window": "1h"}), "rotation_window"},
		{"grace longer than period", base(map[string]interface{}{"rotation_period": "1h", "grace_period": "2h"}), "grace_period"},
		{"max grace below grace", base(map[string]interface{}{"grace_period": "2h", "max_grace_period": "1h"}), "max_grace_period"},
		{"ttl above max", base(map[string]interface{}{"ttl": "2h", "max_ttl": "1h"}), "max_ttl"},
		{"bad client type", base(map[string]interface{}{"allowed_client_types": "partner"}), "allowed_client_types"},
		{"bad cidr", base(map[string]interface{}{"issue_bound_cidrs": "nope"}), "issue_bound_cidrs"},
		{"negative max keys", base(map[string]interface{}{"max_keys_per_client": -1}), "max_keys_per_client"},
		{"bad name", base(nil), "role name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := "roles/r"
			if tc.name == "bad name" {
				path = "roles/bad name!"
			}
			e.userErr(logical.CreateOperation, path, tc.data, tc.want)
		})
	}
	if after := len(e.storageKeys()); after != before {
		t.Fatalf("rejected writes changed storage: %d keys before, %d after", before, after)
	}
}

func TestRoleDeleteRefusedWhileKeysExist(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("c", "internal", "r", nil)
	e.ok(logical.CreateOperation, "keys/c/k", map[string]interface{}{"role": "r"})
	e.userErr(logical.DeleteOperation, "roles/r", nil, "revoke them first")
	e.ok(logical.UpdateOperation, "keys/c/k/revoke", map[string]interface{}{"reason": "done"})
	e.ok(logical.DeleteOperation, "roles/r", nil)
}

func TestConfigRefusesDroppingTierInUse(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "a", "environment": "prod", "risk_tier": "critical"})
	e.userErr(logical.UpdateOperation, "config", map[string]interface{}{"risk_tiers": []string{"low=180d", "medium=90d"}, "default_risk_tier": "low"}, "used by role")
}

func TestRoleWideningIsLoggedAndWarned(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	resp := e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"scopes": "orders:*"})
	if len(resp.Warnings) == 0 {
		t.Fatal("widening a role gave no warning")
	}
}
