package core

import (
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestConfigDefaultsWriteRead(t *testing.T) {
	m := newMount(t)
	got := read(t, m+"/config")
	if got.Data["key_prefix"] != "ak" || num(t, got.Data["entropy_bits"]) != 256 {
		t.Fatalf("unexpected defaults: %v", got.Data)
	}
	write(t, m+"/config", map[string]interface{}{
		"key_prefix":           "acme",
		"entropy_bits":         192,
		"risk_tiers":           []string{"low=180d", "high=720h", "critical=1m"},
		"default_risk_tier":    "low",
		"default_grace_period": "2h",
	})
	got = read(t, m+"/config")
	if got.Data["key_prefix"] != "acme" || num(t, got.Data["entropy_bits"]) != 192 {
		t.Fatalf("config not stored: %v", got.Data)
	}
	tiers := got.Data["risk_tiers"].(map[string]interface{})
	if num(t, tiers["high"]) != 30*24*3600 || num(t, tiers["critical"]) != 60 || len(tiers) != 3 {
		t.Fatalf("risk_tiers = %v", tiers)
	}
	if num(t, got.Data["default_grace_period"]) != 7200 {
		t.Fatalf("default_grace_period = %v", got.Data["default_grace_period"])
	}
	// Retentions of records that only grow: 90 days by default, 0 keeps.
	for _, f := range []string{"approval_request_retention", "archived_key_retention"} {
		if num(t, got.Data[f]) != 90*24*3600 {
			t.Fatalf("%s default = %v", f, got.Data[f])
		}
	}
	write(t, m+"/config", map[string]interface{}{"approval_request_retention": "30d", "archived_key_retention": "0"})
	got = read(t, m+"/config")
	if num(t, got.Data["approval_request_retention"]) != 30*24*3600 || num(t, got.Data["archived_key_retention"]) != 0 {
		t.Fatalf("retentions not stored: %v", got.Data)
	}
	// A partial update keeps the other fields.
	write(t, m+"/config", map[string]interface{}{"entropy_bits": 256})
	got = read(t, m+"/config")
	if got.Data["key_prefix"] != "acme" || num(t, got.Data["entropy_bits"]) != 256 {
		t.Fatalf("partial update lost fields: %v", got.Data)
	}
	// Delete restores the defaults.
	if _, err := client(t).Logical().Delete(m + "/config"); err != nil {
		t.Fatal(err)
	}
	if got = read(t, m+"/config"); got.Data["key_prefix"] != "ak" {
		t.Fatalf("delete did not restore defaults: %v", got.Data)
	}
}

func TestConfigRejectsBadValuesAndStoresNothing(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{"key_prefix": "keep"})
	cases := []struct {
		name  string
		data  map[string]interface{}
		field string
	}{
		{"entropy below floor", map[string]interface{}{"entropy_bits": 64}, "entropy_bits"},
		{"entropy above max", map[string]interface{}{"entropy_bits": 4096}, "entropy_bits"},
		{"entropy not a number", map[string]interface{}{"entropy_bits": "lots"}, "entropy_bits"},
		{"prefix with underscore", map[string]interface{}{"key_prefix": "a_b"}, "key_prefix"},
		{"prefix too long", map[string]interface{}{"key_prefix": "abcdefghijklmnopq"}, "key_prefix"},
		{"tier period too short", map[string]interface{}{"risk_tiers": "low=10s"}, "risk_tiers"},
		{"tier bad duration", map[string]interface{}{"risk_tiers": "low=soon"}, "risk_tiers"},
		{"default tier unknown", map[string]interface{}{"default_risk_tier": "extreme"}, "default_risk_tier"},
		{"grace beyond max grace", map[string]interface{}{"default_grace_period": "200h"}, "default_max_grace_period"},
		{"token ttl too long", map[string]interface{}{"token_ttl": "48h"}, "token_ttl"},
		{"request retention above max", map[string]interface{}{"approval_request_retention": "4000d"}, "approval_request_retention"},
		{"request retention negative", map[string]interface{}{"approval_request_retention": "-1h"}, "approval_request_retention"},
		{"request retention not a duration", map[string]interface{}{"approval_request_retention": "forever"}, "approval_request_retention"},
		{"archive retention above max", map[string]interface{}{"archived_key_retention": "4000d"}, "archived_key_retention"},
		{"archive retention negative", map[string]interface{}{"archived_key_retention": "-5s"}, "archived_key_retention"},
		{"archive retention not a duration", map[string]interface{}{"archived_key_retention": "a while"}, "archived_key_retention"},
		{"mixed good and bad", map[string]interface{}{"key_prefix": "changed", "entropy_bits": 100}, "entropy_bits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client(t).Logical().Write(m+"/config", tc.data)
			expectStatus(t, err, 400, tc.field)
			got := read(t, m+"/config")
			if got.Data["key_prefix"] != "keep" || num(t, got.Data["entropy_bits"]) != 256 {
				t.Fatalf("a rejected write changed the config: %v", got.Data)
			}
		})
	}
}

func TestPluginRegisteredWithVersion(t *testing.T) {
	mounts, err := client(t).Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	m, ok := mounts["apikeys/"]
	if !ok {
		t.Fatalf("apikeys/ not mounted: %v", mounts)
	}
	if m.Type != "apikeys" || m.RunningVersion != vaulttest.Shared.PluginVersion {
		t.Fatalf("mount type %q running version %q, want apikeys %s", m.Type, m.RunningVersion, vaulttest.Shared.PluginVersion)
	}
	if m.RunningSha256 != vaulttest.Shared.PluginSHA256 {
		t.Fatalf("running sha %q, want %q", m.RunningSha256, vaulttest.Shared.PluginSHA256)
	}
	info := read(t, "apikeys/info")
	if info.Data["version"] != vaulttest.Shared.PluginVersion {
		t.Fatalf("info version %v, want %s", info.Data["version"], vaulttest.Shared.PluginVersion)
	}
}
