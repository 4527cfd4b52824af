package backend

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// authorize runs verify/authorize as Vault passes a proxy's sub-request.
func (e *testEnv) authorize(headers map[string][]string, query map[string]interface{}) *logical.Response {
	e.t.Helper()
	resp, err := e.b.HandleRequest(e.ctx, &logical.Request{
		Operation: logical.ReadOperation, Path: "verify/authorize", Data: query, Headers: headers,
		Storage: e.storage, Connection: &logical.Connection{RemoteAddr: "127.0.0.1"},
	})
	if err != nil || resp == nil {
		e.t.Fatalf("authorize: %v %v", resp, err)
	}
	return resp
}

// authorizeKey expects status and returns the response; the key must be in
// no header and the body must be the GET form's document.
func (e *testEnv) authorizeKey(key string, query map[string]interface{}, status int) *logical.Response {
	e.t.Helper()
	resp := e.authorize(map[string][]string{"X-Api-Key": {key}}, query)
	if got := resp.Data[logical.HTTPStatusCode]; got != status {
		e.t.Fatalf("authorize %v: status %v, want %d (%s)", query, got, status, resp.Data[logical.HTTPRawBody])
	}
	var doc map[string]interface{}
	if err := json.Unmarshal(resp.Data[logical.HTTPRawBody].([]byte), &doc); err != nil || doc["active"] != (status == http.StatusOK) {
		e.t.Fatalf("authorize body: %s %v", resp.Data[logical.HTTPRawBody], err)
	}
	for name, values := range resp.Headers {
		for _, v := range values {
			if key != "" && strings.Contains(v, key) {
				e.t.Fatalf("header %s carries the key", name)
			}
		}
	}
	return resp
}

func header(resp *logical.Response, name string) string {
	if v := resp.Headers[name]; len(v) == 1 {
		return v[0]
	}
	return ""
}

func TestVerifyAuthorizeStatusesAndHeaders(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.CreateOperation, "clients/svc", map[string]interface{}{"owner": "Team Ørders\nOn-call", "type": "internal"})
	e.ok(logical.CreateOperation, "roles/r", map[string]interface{}{"scopes": "orders:read,orders:write", "environment": "prod", "audiences": "orders-api"})
	e.ok(logical.CreateOperation, "roles/shows-owner", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "verify_response_fields": "owner", "rate_limit": 1, "rate_limit_window": 60})
	key := e.issue("svc", "k", "r", map[string]interface{}{"scopes": "orders:read"})
	q := map[string]interface{}{"audience": "orders-api", "scope": "orders:read", "client_ip": "192.0.2.7"}

	resp := e.authorizeKey(key, q, http.StatusOK)
	kid := e.issued("svc", "k").KeyID
	for name, want := range map[string]string{headerClient: "svc", headerKeyID: kid, headerScope: "orders:read", headerOwner: "", headerCode: ""} {
		if got := header(resp, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}

	if v := resp.Headers[headerOwner]; len(v) != 1 || v[0] != "" {
		t.Errorf("owner header of a role that does not show it: %q, want present and empty", v)
	}
	// The owner, when the role shows it, percent-encoded: a line break or
	// non-ASCII in a header would break it or be mangled by a proxy.
	shown := e.issue("svc", "shown", "shows-owner", nil)
	resp = e.authorizeKey(shown, nil, http.StatusOK)
	if got := header(resp, headerOwner); got != "Team%20%C3%98rders%0AOn-call" {
		t.Fatalf("owner header %q", got)
	}
	if decoded, err := url.PathUnescape(header(resp, headerOwner)); err != nil || decoded != "Team Ørders\nOn-call" {
		t.Fatalf("owner header does not decode: %q %v", decoded, err)
	}
	// Over the limit: 429, Retry-After, and the code.
	resp = e.authorizeKey(shown, nil, http.StatusTooManyRequests)
	if n, err := strconv.Atoi(header(resp, "Retry-After")); err != nil || n < 1 || n > 60 || header(resp, headerCode) != record.CodeRateLimited {
		t.Fatalf("rate limited: %v", resp.Headers)
	}
	e.clock.Advance(time.Minute)
	e.authorizeKey(shown, nil, http.StatusOK)

	// Refusals: the code in a header, never an identity.
	revoked := e.issue("svc", "rev", "r", nil)
	e.ok(logical.UpdateOperation, "keys/svc/rev/revoke", map[string]interface{}{"reason": "test"})
	for _, tc := range []struct {
		key    string
		query  map[string]interface{}
		status int
		code   string
	}{
		{revoked, q, http.StatusForbidden, record.CodeRevoked},
		{key, map[string]interface{}{"audience": "orders-api", "scope": "orders:write"}, http.StatusForbidden, record.CodeForbiddenScope},
		{key, nil, http.StatusForbidden, record.CodeForbiddenAudience},
		{key, map[string]interface{}{"audience": "orders-api", "environment": "staging"}, http.StatusForbidden, record.CodeForbiddenEnvironment},
		{"not-a-key", q, http.StatusUnauthorized, record.CodeMalformed},
		{"", q, http.StatusUnauthorized, record.CodeMalformed},
	} {
		resp := e.authorizeKey(tc.key, tc.query, tc.status)
		if header(resp, headerCode) != tc.code || header(resp, headerClient) != "" || header(resp, headerKeyID) != "" {
			t.Errorf("%v: headers %v, want code %s", tc.query, resp.Headers, tc.code)
		}
	}

	// No key, or two: the caller presented no usable key (401), not a bad
	// request of the proxy's (which nginx would turn into a 500).
	for _, h := range []map[string][]string{nil, {"Authorization": {"Bearer " + key}}, {"X-Api-Key": {key, key}}} {
		resp := e.authorize(h, q)
		if resp.Data[logical.HTTPStatusCode] != http.StatusUnauthorized || header(resp, headerCode) != codeMissingKey {
			t.Fatalf("%v: %v %v", h, resp.Data[logical.HTTPStatusCode], resp.Headers)
		}
	}
	// The proxy's own mistakes are 400s naming the field; the key in the URL
	// is one of them, and is not echoed.
	for field, value := range map[string]string{"key": key, "client_ip": "not-an-ip", "audience": strings.Repeat("a", 300)} {
		resp := e.authorize(map[string][]string{"X-Api-Key": {key}}, map[string]interface{}{field: value})
		if !resp.IsError() || !strings.Contains(resp.Error().Error(), field) || strings.Contains(resp.Error().Error(), key) {
			t.Fatalf("%s in the query: %v", field, resp)
		}
	}
	// Usage counts the authorize form like the others.
	usage := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["usage"].(map[string]interface{})
	if counts := usage["verify_counts"].(map[string]uint64); counts[record.OutcomeActive] != 1 || counts[record.CodeForbiddenScope] != 1 {
		t.Fatalf("usage counts: %v", counts)
	}
}

// Every verify code the code base defines has a deliberate status: a new
// code must be placed in the table, not fall through to a 500.
func TestAuthorizeStatusCoversEveryCode(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "record/verify.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(f, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			for i, name := range vs.Names {
				if strings.HasPrefix(name.Name, "Code") && i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
						v, _ := strconv.Unquote(lit.Value)
						codes = append(codes, v)
					}
				}
			}
		}
		return true
	})
	if len(codes) < 11 {
		t.Fatalf("found only %d codes in record/verify.go: %v", len(codes), codes)
	}
	for _, c := range codes {
		s := authorizeStatusOf(record.VerifyResult{Code: c})
		if s != http.StatusUnauthorized && s != http.StatusForbidden && s != http.StatusTooManyRequests {
			t.Errorf("code %s: status %d", c, s)
		}
	}
	if len(authorizeStatus) != len(codes)+1 { // + missing_key
		t.Errorf("the table has %d codes, record/verify.go %d: %v", len(authorizeStatus), len(codes), codes)
	}
}

// The README's mount tune passes every header verify/authorize sets: Vault
// drops the ones allowed_response_headers does not list.
func TestReadmeTuneAllowsAuthorizeHeaders(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var tune string
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, "allowed_response_headers=") {
			tune = line
		}
	}
	if tune == "" {
		t.Fatal("README.md has no mount tune with allowed_response_headers=")
	}
	for _, h := range authorizeHeaderNames {
		if !strings.Contains(tune, h) {
			t.Errorf("README tune %q lacks %s", tune, h)
		}
	}
}
