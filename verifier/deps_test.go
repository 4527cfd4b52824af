package verifier

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsStayLight keeps the package cheap to import for a resource
// server: the standard library, go-jose, golang-lru and the plugin's pure
// scope grammar, never Vault's SDK or the plugin's backend.
func TestImportsStayLight(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	allowed := []string{
		"github.com/apikeys/vault-plugin-secrets-apikeys/verifier",
		"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scopes",
		"github.com/go-jose/go-jose/v4",
		"github.com/hashicorp/golang-lru/v2",
	}
	for _, pkg := range strings.Fields(string(out)) {
		ok := false
		for _, a := range allowed {
			if pkg == a || strings.HasPrefix(pkg, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("verifier depends on %s: resource servers would import it too", pkg)
		}
	}
}
