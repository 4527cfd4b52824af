package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

func TestPolicyRendersConfigAndRoles(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{
		"key_prefix": "acme", "entropy_bits": 192, "risk_tiers": []string{"low=180d", "high=30d"}, "default_risk_tier": "low",
		"default_grace_period": "2h", "token_ttl": "10m", "review_period": "30d",
	})
	e.setupClientRole("billing", "internal", "pay", map[string]interface{}{"risk_tier": "high", "grace_period": "1h", "idle_timeout": "720h"})
	e.ok(logical.CreateOperation, "roles/sched", map[string]interface{}{"scopes": "a:b", "environment": "prod", "rotation_schedule": "0 3 * * 1", "requires_approval": true})

	d := e.ok(logical.ReadOperation, "policy", nil).Data
	kf := d["key_format"].(map[string]interface{})
	if kf["prefix"] != "acme" || kf["entropy_bits"] != 192 || kf["random_length"] != 33 || kf["random_source"] != "crypto/rand" {
		t.Fatalf("key_format = %v", kf)
	}
	if d["storage"].(map[string]interface{})["hash"] != "HMAC-SHA256" {
		t.Fatalf("storage = %v", d["storage"])
	}
	rot := d["rotation"].(map[string]interface{})
	tiers := rot["risk_tiers"].(map[string]interface{})
	if len(tiers) != 2 || tiers["high"].(map[string]interface{})["rotation_period"] != int64(30*86400) || rot["default_grace_period"] != int64(7200) {
		t.Fatalf("rotation = %v", rot)
	}
	roles := d["roles"].(map[string]interface{})
	pay := roles["pay"].(map[string]interface{})
	if pay["risk_tier"] != "high" || pay["rotation_period"] != int64(30*86400) || pay["grace_period"] != int64(3600) || pay["idle_timeout"] != int64(720*3600) {
		t.Fatalf("role pay = %v", pay)
	}
	sched := roles["sched"].(map[string]interface{})
	if sched["rotation_schedule"] != "0 3 * * 1" || sched["risk_tier"] != "low" || sched["requires_approval"] != true {
		t.Fatalf("role sched = %v", sched)
	}
	tok := d["tokens"].(map[string]interface{})
	if tok["token_ttl"] != int64(600) || tok["algorithm"] != "EdDSA (Ed25519)" {
		t.Fatalf("tokens = %v", tok)
	}
	if d["governance"].(map[string]interface{})["review_period"] != int64(30*86400) {
		t.Fatalf("governance = %v", d["governance"])
	}
}
