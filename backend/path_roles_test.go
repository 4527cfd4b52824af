package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
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

// A rotation retires the previous version still in its grace, so a role's
// grace must be shorter than the shortest gap between two scheduled times,
// not only than a fixed rotation_period.
func TestRoleScheduleGraceMustBeShorterThanShortestScheduledGap(t *testing.T) {
	e := newTestEnv(t)
	before := len(e.storageKeys())
	base := func(extra map[string]interface{}) map[string]interface{} {
		d := map[string]interface{}{"scopes": "orders:read", "environment": "prod"}
		for k, v := range extra {
			d[k] = v
		}
		return d
	}
	bad := []struct {
		name string
		data map[string]interface{}
		want string
	}{
		{"hourly schedule, day of grace", base(map[string]interface{}{"rotation_schedule": "0 * * * *", "grace_period": "24h"}),
			`grace_period (24h0m0s) is not shorter than the shortest interval between two times of rotation_schedule "0 * * * *" (1h0m0s)`},
		{"hourly schedule, mount default grace", base(map[string]interface{}{"rotation_schedule": "0 * * * *"}), "the mount's default_grace_period (24h0m0s)"},
		{"daily schedule, grace of a day", base(map[string]interface{}{"rotation_schedule": "0 3 * * *", "grace_period": "24h"}), "(24h0m0s)"},
		// One day apart only in leap years.
		{"leap-year gap", base(map[string]interface{}{"rotation_schedule": "0 0 28,29 2 *", "grace_period": "48h"}), "(24h0m0s)"},
		{"every 30s", base(map[string]interface{}{"rotation_schedule": "@every 30s", "grace_period": "0"}), "at least 1m0s apart"},
		{"no date", base(map[string]interface{}{"rotation_schedule": "0 0 30 2 *"}), "matches no date"},
		{"zone without fields", base(map[string]interface{}{"rotation_schedule": "CRON_TZ=UTC"}), "time zone must be followed"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			e.userErr(logical.CreateOperation, "roles/r", tc.data, tc.want)
		})
	}
	if after := len(e.storageKeys()); after != before {
		t.Fatalf("rejected writes changed storage: %d keys before, %d after", before, after)
	}
	e.ok(logical.CreateOperation, "roles/daily", base(map[string]interface{}{"rotation_schedule": "0 3 * * *", "grace_period": "23h"}))
	e.ok(logical.CreateOperation, "roles/weekly", base(map[string]interface{}{"rotation_schedule": "0 3 * * 1"}))
	// An update is checked the same way.
	e.userErr(logical.UpdateOperation, "roles/weekly", map[string]interface{}{"rotation_schedule": "0 */6 * * *"}, "default_grace_period")
}

func TestRoleRotationWindowMinimum(t *testing.T) {
	e := newTestEnv(t)
	base := map[string]interface{}{"scopes": "a:b", "environment": "prod", "rotation_schedule": "0 * * * *", "grace_period": "10m"}
	with := func(window string) map[string]interface{} {
		d := map[string]interface{}{"rotation_window": window}
		for k, v := range base {
			d[k] = v
		}
		return d
	}
	e.userErr(logical.CreateOperation, "roles/r", with("30s"), "rotation_window must be 0 (no limit) or at least 2m0s")
	e.userErr(logical.CreateOperation, "roles/r", with("119s"), "rotation_window")
	resp := e.ok(logical.CreateOperation, "roles/r", with("2m"))
	if resp.Data["rotation_window"] != int64(120) {
		t.Fatalf("rotation_window = %v", resp.Data["rotation_window"])
	}
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"rotation_window": "0"})
}

// storeRole writes a role as an older version of the plugin could have
// stored it, bypassing today's validation.
func (e *testEnv) storeRole(r *record.Role) {
	e.t.Helper()
	r.CreatedAt, r.UpdatedAt = e.clock.Now(), e.clock.Now()
	if err := e.b.putRole(e.ctx, e.storage, r); err != nil {
		e.t.Fatal(err)
	}
}

func TestRoleReadWarnsAboutValuesStoredBeforeCurrentRules(t *testing.T) {
	e := newTestEnv(t)
	grace := 24 * time.Hour
	e.storeRole(&record.Role{Name: "old", Scopes: []string{"a:b"}, Environment: "prod",
		RotationSchedule: "0 * * * *", RotationWindow: 30 * time.Second, GracePeriod: &grace})
	resp := e.ok(logical.ReadOperation, "roles/old", nil)
	if resp.Data["rotation_window"] != int64(120) {
		t.Fatalf("rotation_window = %v, want the applied 120", resp.Data["rotation_window"])
	}
	w := strings.Join(resp.Warnings, "\n")
	if !strings.Contains(w, "rotation_window 30s is below the minimum 2m0s") || !strings.Contains(w, "grace_period (24h0m0s) is not shorter") {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
	e.ok(logical.CreateOperation, "roles/new", map[string]interface{}{"scopes": "a:b", "environment": "prod"})
	if resp := e.ok(logical.ReadOperation, "roles/new", nil); len(resp.Warnings) != 0 {
		t.Fatalf("warnings on a valid role: %q", resp.Warnings)
	}
}

// A configuration change must not make a role's grace reach its rotation
// interval: the roles affected are named.
func TestConfigRefusesChangeLeavingGraceNotShorterThanRotation(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"default_grace_period": "1h"})
	// tiered: medium tier (90d), own grace 24h. fixed: own 12h period,
	// mount grace. sched: every 6 hours, mount grace.
	e.ok(logical.CreateOperation, "roles/tiered", map[string]interface{}{"scopes": "a:b", "environment": "prod", "grace_period": "24h"})
	e.ok(logical.CreateOperation, "roles/fixed", map[string]interface{}{"scopes": "a:b", "environment": "prod", "rotation_period": "12h"})
	e.ok(logical.CreateOperation, "roles/sched", map[string]interface{}{"scopes": "a:b", "environment": "prod", "rotation_schedule": "0 */6 * * *"})
	cfgBefore := e.ok(logical.ReadOperation, "config", nil).Data

	// Shortening the default tier below tiered's grace (the reviewer's case).
	e.userErr(logical.UpdateOperation, "config", map[string]interface{}{"risk_tiers": []string{"medium=1h", "low=180d"}, "default_risk_tier": "medium"},
		`role "tiered": grace_period (24h0m0s) is not shorter than the rotation period of risk tier "medium" (1h0m0s)`)
	// The same through default_risk_tier alone.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"risk_tiers": []string{"medium=90d", "low=180d", "fast=2h"}})
	e.userErr(logical.UpdateOperation, "config", map[string]interface{}{"default_risk_tier": "fast"}, `role "tiered"`)
	// Lengthening the mount's grace: both roles without their own grace.
	resp, err := e.doErr(logical.UpdateOperation, "config", map[string]interface{}{"default_grace_period": "12h"})
	if err != nil || resp == nil || !resp.IsError() {
		t.Fatalf("default_grace_period=12h accepted: %v %v", resp, err)
	}
	msg := resp.Error().Error()
	for _, want := range []string{
		`role "fixed": the mount's default_grace_period (12h0m0s) is not shorter than the rotation_period (12h0m0s)`,
		`role "sched": the mount's default_grace_period (12h0m0s) is not shorter than the shortest interval between two times of rotation_schedule "0 */6 * * *" (6h0m0s)`,
	} {
		if !strings.Contains(msg, want) {
			t.Fatalf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, `"tiered"`) {
		t.Fatalf("error names a role that is not affected: %q", msg)
	}
	// Restoring the defaults (24h grace) is the same change.
	e.userErr(logical.DeleteOperation, "config", nil, `role "fixed"`)
	// Nothing of the refused writes was stored.
	cfgAfter := e.ok(logical.ReadOperation, "config", nil).Data
	if cfgAfter["default_grace_period"] != cfgBefore["default_grace_period"] || cfgAfter["default_risk_tier"] != cfgBefore["default_risk_tier"] {
		t.Fatalf("config changed: %v -> %v", cfgBefore, cfgAfter)
	}
	// A grace that still fits is accepted.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"default_grace_period": "5h"})
}

// A role stored before the rule covered schedules does not block config
// changes that leave it as it was.
func TestConfigChangeNotBlockedByUnaffectedStoredRole(t *testing.T) {
	e := newTestEnv(t)
	grace := 24 * time.Hour
	e.storeRole(&record.Role{Name: "old", Scopes: []string{"a:b"}, Environment: "prod", RotationSchedule: "0 * * * *", GracePeriod: &grace})
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"default_grace_period": "2h", "key_prefix": "acme"})
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"risk_tiers": []string{"medium=30d", "low=180d"}})
}
