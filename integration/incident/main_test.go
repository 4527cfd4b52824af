// Package incident tests the incident controls (SPEC §10) in a real Vault
// on Raft storage: bulk operations by selector, reversible per-key
// controls, client restrictions and shared rate limits, the verify answer
// gateways act on, and inventory and log queries that page with a cursor.
package incident

import (
	"fmt"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMainWith(m, vaulttest.Options{Raft: true}) }

var (
	newMount        = vaulttest.NewMount
	client          = vaulttest.Client
	write           = vaulttest.Write
	read            = vaulttest.Read
	expectStatus    = vaulttest.ExpectStatus
	setupClientRole = vaulttest.SetupClientRole
	num             = vaulttest.Num
	waitFor         = vaulttest.WaitFor
)

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
