package openapi

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// mountDocument fetches Vault's OpenAPI document and keeps the mount's
// paths only. Vault's own sys/, auth/ and other mounts' paths are Vault's
// to fix, not this plugin's; what the plugin ships must be clean. The
// components (request and response schemas) are the plugin's and stay.
func mountDocument(t *testing.T, mount string) []byte {
	t.Helper()
	req, err := http.NewRequest("GET", vaulttest.Shared.Addr+"/v1/sys/internal/specs/openapi", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", vaulttest.Shared.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sys/internal/specs/openapi: HTTP %d %v", resp.StatusCode, err)
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	paths, _ := doc["paths"].(map[string]interface{})
	mine := map[string]interface{}{}
	for p, v := range paths {
		if strings.HasPrefix(p, "/"+mount+"/") {
			mine[p] = v
		}
	}
	if len(mine) < 40 {
		t.Fatalf("Vault's document has only %d paths under /%s/", len(mine), mount)
	}
	doc["paths"] = mine
	doc["components"] = map[string]interface{}{"schemas": referencedSchemas(t, doc, mine)}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// referencedSchemas are the component schemas the paths refer to, directly
// or through other schemas: the mount's own. Vault's are left out with its
// paths, or each would be reported as unused.
func referencedSchemas(t *testing.T, doc map[string]interface{}, paths map[string]interface{}) map[string]interface{} {
	t.Helper()
	components, _ := doc["components"].(map[string]interface{})
	all, _ := components["schemas"].(map[string]interface{})
	kept := map[string]interface{}{}
	var walk func(v interface{})
	walk = func(v interface{}) {
		switch v := v.(type) {
		case map[string]interface{}:
			if ref, ok := v["$ref"].(string); ok {
				name := strings.TrimPrefix(ref, "#/components/schemas/")
				if _, done := kept[name]; !done {
					s, ok := all[name]
					if !ok {
						t.Fatalf("the document refers to %s, which it does not define", ref)
					}
					kept[name] = s
					walk(s)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []interface{}:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(paths)
	return kept
}

// redocly is the pinned CLI that `make deps` installs with npm ci.
func redocly(t *testing.T, root string) string {
	t.Helper()
	bin := filepath.Join(root, "bootstrap", "ci", "openapi", "node_modules", ".bin", "redocly")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the pinned Redocly CLI is not installed (bootstrap/ci/openapi): run `make deps`: %v", err)
	}
	return bin
}

func TestOpenAPIDocumentLints(t *testing.T) {
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := redocly(t, root)
	doc := filepath.Join(t.TempDir(), "openapi.json")
	if err := os.WriteFile(doc, mountDocument(t, vaulttest.Shared.Mount), 0o600); err != nil {
		t.Fatal(err)
	}
	if keep := os.Getenv("OPENAPI_KEEP"); keep != "" {
		raw, _ := os.ReadFile(doc)
		os.WriteFile(keep, raw, 0o600)
	}
	config := filepath.Join(root, "bootstrap", "ci", "openapi", "redocly.yaml")
	cmd := exec.Command(bin, "lint", "--config", config, "--max-problems", "1000", "--format", "stylish", doc)
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint found errors in the mount's OpenAPI document (%v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "valid") {
		t.Fatalf("redocly lint said nothing recognisable:\n%s", out)
	}
	t.Logf("%s", out)
}
