// Package shortlived tests leased keys (creds/), the token exchange, JWKS
// and the CI example inside a real Vault server (see internal/vaulttest).
package shortlived

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

func TestMain(m *testing.M) { vaulttest.RunMain(m) }

var (
	newMount     = vaulttest.NewMount
	client       = vaulttest.Client
	write        = vaulttest.Write
	read         = vaulttest.Read
	expectStatus = vaulttest.ExpectStatus
	num          = vaulttest.Num
)

// setup creates client c (type typ) and role r on mount m.
func setup(t *testing.T, m, c, typ, r string, role map[string]interface{}) {
	t.Helper()
	write(t, m+"/clients/"+c, map[string]interface{}{"owner": "team-" + c, "type": typ})
	data := map[string]interface{}{"scopes": "orders:read,orders:write", "environment": "prod", "audiences": "orders-api"}
	for k, v := range role {
		data[k] = v
	}
	write(t, m+"/roles/"+r, data)
}

// verify asks the mount whether key is active; it returns active and code.
func verify(t *testing.T, m, key string) (bool, string) {
	t.Helper()
	s := write(t, m+"/verify", map[string]interface{}{"key": key, "audience": "orders-api"})
	active, _ := s.Data["active"].(bool)
	code, _ := s.Data["code"].(string)
	return active, code
}

// waitFor polls cond (a background effect of a real Vault) until it holds
// or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fetchJWKS gets mount m's JWK Set over plain HTTP with no Vault token, as a
// resource server would.
func fetchJWKS(t *testing.T, m string) jose.JSONWebKeySet {
	t.Helper()
	resp, body := vaulttest.Do(t, vaulttest.NewRequest(t, "GET", vaulttest.Shared.Addr+"/v1/"+m+"/jwks", nil))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET jwks without a token: %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("jwks is not a JWK Set: %v: %s", err, body)
	}
	return set
}

// tokenClient returns a client using token tok instead of root.
func tokenClient(t *testing.T, tok string) *api.Client {
	t.Helper()
	c := client(t)
	c.SetToken(tok)
	return c
}
