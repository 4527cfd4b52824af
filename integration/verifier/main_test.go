// Package verifier tests the Go verifier library (package verifier at the
// module root) against a real Vault with the plugin: tokens exchanged by
// the mount verified offline against its JWKS, signing keys rotated and
// withdrawn, and API keys verified online, with and without the answer
// cache (see internal/vaulttest).
package verifier

import (
	"errors"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/apikeys/vault-plugin-secrets-apikeys/verifier"
)

func TestMain(m *testing.M) { vaulttest.RunMain(m) }

var (
	newMount = vaulttest.NewMount
	write    = vaulttest.Write
)

// setup makes client acme and role svc (orders:read and orders:write for
// orders-api, in prod) on mount m, and issues key acme/main; it returns
// the key. extra adds role fields.
func setup(t *testing.T, m string, extra map[string]interface{}) string {
	t.Helper()
	write(t, m+"/clients/acme", map[string]interface{}{"owner": "team-acme", "type": "internal"})
	role := map[string]interface{}{"scopes": "orders:read,orders:write", "environment": "prod", "audiences": "orders-api"}
	for k, v := range extra {
		role[k] = v
	}
	write(t, m+"/roles/svc", role)
	return write(t, m+"/keys/acme/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)
}

// wantKind asserts err is a *verifier.Error of kind with code.
func wantKind(t *testing.T, err error, kind error, code string) {
	t.Helper()
	var e *verifier.Error
	if !errors.As(err, &e) || !errors.Is(err, kind) || e.Code != code {
		t.Fatalf("err = %v, want kind %v with code %q", err, kind, code)
	}
}
