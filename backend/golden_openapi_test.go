package backend

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// TestGoldenOpenAPI pins the mount's OpenAPI document, built in-process the
// way Vault builds it for `GET /v1/<mount>/?help=1` (a help request on the
// mount root). A re-layout may only add Responses to it.
func TestGoldenOpenAPI(t *testing.T) {
	e := newTestEnv(t)
	if sv, ok := e.b.System().(*logical.StaticSystemView); ok && sv.PluginEnvironment == nil {
		sv.PluginEnvironment = &logical.PluginEnvironment{VaultVersion: "golden"} // the root help reads it
	}
	resp, err := e.b.HandleRequest(e.ctx, &logical.Request{Operation: logical.HelpOperation, Storage: e.storage})
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("no OpenAPI document: %T", resp.Data["openapi"])
	}
	checkGolden(t, "openapi.json", sortedJSON(t, doc))
}

// sortedJSON renders v as indented JSON with object keys sorted (a round
// trip through interface{} sorts them), so the golden diffs line by line.
func sortedJSON(t *testing.T, v interface{}) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var generic interface{}
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(generic); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
