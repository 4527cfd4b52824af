package core

import (
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// Alerts that verify detected, and its outcome counts, live in memory until
// the next tick or alert read; a plugin reload (or an upgrade, which
// reloads) stores them as the mount stops instead of dropping them.
func TestDetectedAlertsSurvivePluginReload(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{"failed_verify_threshold": 3, "alert_window": "10m"})
	for i := 0; i < 5; i++ {
		write(t, m+"/verify", map[string]interface{}{"key": "not-a-key", "client_ip": "203.0.113.9"})
	}
	if _, err := client(t).Sys().ReloadPlugin(&api.ReloadPluginInput{Mounts: []string{m}}); err != nil {
		t.Fatalf("reloading the plugin: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := client(t).Logical().Read(m + "/alerts")
		if err == nil && s != nil {
			list, _ := s.Data["alerts"].([]interface{})
			for _, raw := range list {
				a, _ := raw.(map[string]interface{})
				if a["type"] == "failed_verify_burst" {
					if n := num(t, a["count"]); n != 5 {
						t.Fatalf("failed_verify_burst count = %d, want 5", n)
					}
					return
				}
			}
			t.Fatalf("no failed_verify_burst alert after the reload: %v", list)
		}
		if time.Now().After(deadline) {
			t.Fatalf("mount did not answer after the reload: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // polling for the reloaded mount
	}
}
