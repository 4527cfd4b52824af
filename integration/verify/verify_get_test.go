package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// verifyGet sends the GET form over real HTTP: the key (if not empty) in
// the header named header, the rest as query parameters. It returns the
// status and the decoded body.
func verifyGet(t *testing.T, token, m, header, key string, query url.Values) (int, map[string]interface{}) {
	t.Helper()
	u := vaulttest.Shared.Addr + "/v1/" + m + "/verify"
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", token)
	if key != "" {
		// Set the name as given, not canonicalised, to send it in that case.
		req.Header[header] = []string{key}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]interface{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // as the api client does, to compare with its answers
	if err := dec.Decode(&body); err != nil {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, body
}

func TestVerifyGetWithHeader(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", map[string]interface{}{"audiences": "orders-api"})
	key := issue(t, m, "svc", "k", "r", map[string]interface{}{"scopes": "orders:read"})
	revoked := issue(t, m, "svc", "rev", "r", nil)
	write(t, m+"/keys/svc/rev/revoke", map[string]interface{}{"reason": "test"})
	token := vaulttest.Shared.Token

	// Active, with the query parameters applied: the RFC 7662 document
	// itself (no Vault envelope), with the fields of the POST answer.
	q := url.Values{"scope": {"orders:read"}, "audience": {"orders-api"}, "environment": {"prod"}, "client_ip": {"192.0.2.44"}}
	post := verify(t, client(t), m, key, map[string]interface{}{"scope": "orders:read", "audience": "orders-api", "environment": "prod", "client_ip": "192.0.2.44"})
	for _, name := range []string{"X-Api-Key", "x-api-key", "X-API-KEY"} {
		status, d := verifyGet(t, token, m, name, key, q)
		if _, wrapped := d["data"]; wrapped {
			t.Fatalf("%s: GET answer is wrapped in Vault's envelope: %v", name, d)
		}
		if status != 200 || d["active"] != true || d["client"] != "svc" || d["scope"] != "orders:read" || d["state"] != "active" {
			t.Fatalf("%s: HTTP %d %v", name, status, d)
		}
		for k, v := range post {
			if fmt.Sprint(d[k]) != fmt.Sprint(v) {
				t.Fatalf("%s: GET %s=%v, POST %v", name, k, d[k], v)
			}
		}
	}
	// Inactive codes, still HTTP 200 and nothing but the code.
	for _, tc := range []struct {
		key   string
		query url.Values
		code  string
	}{
		{revoked, nil, "revoked"},
		{"not-a-key", nil, "malformed"},
		{key, url.Values{"scope": {"orders:write"}, "audience": {"orders-api"}}, "forbidden_scope"},
		{key, nil, "forbidden_audience"},
		{key, url.Values{"audience": {"billing-api"}}, "forbidden_audience"},
	} {
		status, d := verifyGet(t, token, m, "X-Api-Key", tc.key, tc.query)
		if status != 200 || len(d) != 2 || d["active"] != false || d["code"] != tc.code {
			t.Fatalf("%v: HTTP %d %v, want %s", tc.query, status, d, tc.code)
		}
	}
	// No header: a 400 that says where the key goes.
	status, body := verifyGet(t, token, m, "", "", q)
	if status != 400 || !strings.Contains(fmt.Sprint(body["errors"]), "X-Api-Key header") {
		t.Fatalf("missing header: HTTP %d %v", status, body)
	}
	// The key in the URL is refused.
	status, body = verifyGet(t, token, m, "", "", url.Values{"key": {"not-a-key"}})
	if status != 400 || !strings.Contains(fmt.Sprint(body["errors"]), "never put an API key in the URL") {
		t.Fatalf("key in URL: HTTP %d %v", status, body)
	}
	// Usage counts both forms: 1 POST and 3 GETs active, 1 forbidden_scope.
	usage := read(t, m+"/keys/svc/k").Data["usage"].(map[string]interface{})
	counts := usage["verify_counts"].(map[string]interface{})
	if num(t, counts["active"]) != 4 || num(t, counts["forbidden_scope"]) != 1 {
		t.Fatalf("usage counts: %v", counts)
	}

	// The key never reaches the audit log or the server log: Vault audits
	// request headers only when sys/config/auditing/request-headers says so.
	vaulttest.NoKeyInLogs(t, key, revoked)
	audit, err := os.ReadFile(vaulttest.Shared.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, line := range strings.Split(string(audit), "\n") {
		if strings.Contains(line, `"operation":"read"`) && strings.Contains(line, `"path":"`+m+`/verify"`) {
			audited = true
		}
	}
	if !audited {
		t.Fatal("the GET verifies were not audited at all")
	}
}

// A token needs read on the verify path for the GET form, update for POST.
func TestVerifyGetNeedsReadCapability(t *testing.T) {
	m := newMount(t)
	setup(t, m, "svc", "r", nil)
	key := issue(t, m, "svc", "k", "r", nil)
	c := client(t)
	tokens := map[string]string{}
	for _, capab := range []string{"read", "update"} {
		name := m + "-verify-" + capab
		if err := c.Sys().PutPolicy(name, fmt.Sprintf("path %q { capabilities = [%q] }", m+"/verify", capab)); err != nil {
			t.Fatal(err)
		}
		s, err := c.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{name}, NoDefaultPolicy: true})
		if err != nil {
			t.Fatal(err)
		}
		tokens[capab] = s.Auth.ClientToken
	}
	if status, body := verifyGet(t, tokens["read"], m, "X-Api-Key", key, nil); status != 200 {
		t.Fatalf("read token GET: HTTP %d %v", status, body)
	}
	if status, body := verifyGet(t, tokens["update"], m, "X-Api-Key", key, nil); status != 403 {
		t.Fatalf("update-only token GET: HTTP %d %v", status, body)
	}
	ro := client(t)
	ro.SetToken(tokens["read"])
	_, err := ro.Logical().Write(m+"/verify", map[string]interface{}{"key": key})
	expectStatus(t, err, 403, "")
}
