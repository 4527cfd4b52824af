// Package incident tests the incident controls (SPEC §10) in a real Vault
// on Raft storage: bulk operations by selector, reversible per-key
// controls, client restrictions and shared rate limits, the verify answer
// gateways act on, and inventory and log queries that page with a cursor.
package incident

import (
	"fmt"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMainWith(m, vaulttest.Options{Raft: true}) }

var (
	newMount     = vaulttest.NewMount
	client       = vaulttest.Client
	write        = vaulttest.Write
	read         = vaulttest.Read
	expectStatus = vaulttest.ExpectStatus
	num          = vaulttest.Num
)

// setupClientRole writes client c (owner "team-<c>") and role with scope
// orders:read in environment prod; extra overrides or adds role fields.
func setupClientRole(t *testing.T, mount, c, typ, role string, extra map[string]interface{}) {
	t.Helper()
	write(t, mount+"/clients/"+c, map[string]interface{}{"owner": "team-" + c, "type": typ})
	data := map[string]interface{}{"scopes": "orders:read", "environment": "prod"}
	for k, v := range extra {
		data[k] = v
	}
	write(t, mount+"/roles/"+role, data)
}

// issue issues key name of client c under role and returns its secret.
func issue(t *testing.T, mount, c, name, role string) string {
	t.Helper()
	sec := write(t, fmt.Sprintf("%s/keys/%s/%s", mount, c, name), map[string]interface{}{"role": role})
	return sec.Data["key"].(string)
}

// verifyCode verifies key and returns "active" or the refusal's code.
func verifyCode(t *testing.T, mount, key string, extra map[string]interface{}) string {
	t.Helper()
	data := map[string]interface{}{"key": key}
	for k, v := range extra {
		data[k] = v
	}
	sec := write(t, mount+"/verify", data)
	if sec.Data["active"] == true {
		return "active"
	}
	code, _ := sec.Data["code"].(string)
	return code
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond) // polling a running Vault, not timing
	}
}
