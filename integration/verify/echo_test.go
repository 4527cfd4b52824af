package verify

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// A key pasted into the wrong field is repeated nowhere: not in the
// answers (errors, warnings), not in alerts or the lifecycle log, not in
// the audit log (the mount un-HMACs no request field) and not in the
// server log. Path segments and parameter names are left out here: Vault
// itself writes the request path and the names of request fields to the
// audit log in clear (only values are HMAC'd). The plugin refuses
// key-shaped names and does not repeat unknown parameter names (the unit
// tests cover both); what Vault logs before the plugin runs is beyond it.
func TestPastedKeyNotEchoedInVault(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", map[string]interface{}{"audiences": "orders-api"})
	key := issue(t, m, "svc", "k", "r", nil)
	pasted := issue(t, m, "svc", "victim", "r", nil)
	secret := pasted[strings.LastIndexByte(pasted, '_')+1:]
	c := client(t)

	check := func(what string, s *api.Secret, err error) {
		t.Helper()
		var texts []string
		if err != nil {
			texts = append(texts, err.Error())
		}
		if s != nil {
			texts = append(texts, s.Warnings...)
		}
		for _, x := range texts {
			if strings.Contains(x, secret) {
				t.Fatalf("%s: the answer repeats the pasted key: %s", what, x)
			}
		}
	}
	writes := []struct {
		path string
		data map[string]interface{}
	}{
		{m + "/keys/svc/k2", map[string]interface{}{"role": pasted}},
		{m + "/roles/r2", map[string]interface{}{"scopes": pasted, "environment": "prod"}},
		{m + "/roles/r3", map[string]interface{}{"scopes": "orders:read", "environment": pasted}},
		{m + "/clients/c2", map[string]interface{}{"owner": "o", "type": pasted}},
		{m + "/config", map[string]interface{}{"alert_window": pasted}},
		{m + "/verify", map[string]interface{}{"key": key, "scope": "orders:read," + pasted}},
		{m + "/verify", map[string]interface{}{"key": key, "audience": pasted}},
		{m + "/verify", map[string]interface{}{"key": key, "client_ip": pasted}},
		{m + "/token", map[string]interface{}{"key": key, "audience": pasted}},
		{m + "/token", map[string]interface{}{"key": key, "audience": "orders-api", "scope": pasted}},
		{m + "/keys/svc/victim/revoke", map[string]interface{}{"reason": "pasted: " + pasted}},
	}
	for _, w := range writes {
		s, err := c.Logical().Write(w.path, w.data)
		check(w.path, s, err)
	}
	s, err := c.Logical().Read(m + "/alerts")
	check("alerts", s, err)
	if err != nil || s == nil || vaulttest.Num(t, s.Data["count"]) < 2 {
		t.Fatalf("the pasted scope and audience raised no alerts: %v %v", s, err)
	}
	for _, p := range []string{m + "/alerts", m + "/log"} {
		s, err := c.Logical().Read(p)
		if err != nil || s == nil {
			t.Fatalf("%s: %v", p, err)
		}
		if raw, _ := json.Marshal(s.Data); strings.Contains(string(raw), secret) {
			t.Fatalf("%s holds the pasted key", p)
		}
	}
	for _, p := range []string{vaulttest.Shared.AuditPath, vaulttest.Shared.LogPath} {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), secret) {
			t.Fatalf("the pasted key is in %s", p)
		}
	}
}
