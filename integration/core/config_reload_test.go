package core

import (
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// A plugin reload builds a fresh backend that reads the config back from
// storage: it must be exactly what was written, with removed default tiers
// still gone and roles on them still refused.
func TestConfigSurvivesPluginReload(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{
		"risk_tiers":           []string{"low=200d", "high=20d"},
		"default_risk_tier":    "low",
		"review_period":        0,
		"leased_key_retention": 0,
	})
	before := read(t, m+"/config").Data
	role := map[string]interface{}{"scopes": "orders:read", "environment": "prod", "risk_tier": "medium"}
	_, err := client(t).Logical().Write(m+"/roles/mid", role)
	expectStatus(t, err, 400, "risk_tier")

	if _, err := client(t).Sys().ReloadPlugin(&api.ReloadPluginInput{Mounts: []string{m}}); err != nil {
		t.Fatalf("reloading the plugin: %v", err)
	}
	// The reload is done once the mount answers again.
	var after map[string]interface{}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := client(t).Logical().Read(m + "/config")
		if err == nil && s != nil {
			after = s.Data
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mount did not answer after the reload: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("config changed across a plugin reload:\nbefore %v\nafter  %v", before, after)
	}
	if tiers := after["risk_tiers"].(map[string]interface{}); len(tiers) != 2 {
		t.Fatalf("risk_tiers after reload = %v", tiers)
	}
	_, err = client(t).Logical().Write(m+"/roles/mid", role)
	expectStatus(t, err, 400, "risk_tier")
}
