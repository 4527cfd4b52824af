package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// upstream is the protected application: it records the headers of every
// request that reaches it.
type upstream struct {
	mu   sync.Mutex
	seen []http.Header
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Header.Clone())
	u.mu.Unlock()
	io.WriteString(w, "hello from upstream\n")
}

func (u *upstream) take() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// gatewayPolicy writes the shipped apikeys-gateway policy, its paths moved
// to mount m, and returns its name.
func gatewayPolicy(t *testing.T, m string) string {
	t.Helper()
	rules := bootstrapFile(t, "policies", "gateway.hcl")
	name := m + "-gateway"
	if err := vaulttest.Client(t).Sys().PutPolicy(name, strings.ReplaceAll(rules, `"apikeys/`, `"`+m+`/`)); err != nil {
		t.Fatal(err)
	}
	return name
}

// gatewayToken is a token with the gateway policy only.
func gatewayToken(t *testing.T, m string) string {
	t.Helper()
	s, err := vaulttest.Client(t).Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{gatewayPolicy(t, m)}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

type answer struct {
	status int
	header http.Header
	body   string
}

// get sends a request through nginx with the given headers.
func get(t *testing.T, addr, path string, headers map[string]string) answer {
	t.Helper()
	req := vaulttest.NewRequest(t, "GET", "http://"+addr+path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, body := vaulttest.Do(t, req)
	return answer{resp.StatusCode, resp.Header, string(body)}
}

func TestNginxAuthRequest(t *testing.T) {
	m := vaulttest.NewMount(t)
	vaulttest.Write(t, m+"/clients/svc", map[string]interface{}{"owner": "Team Orders (on-call)", "type": "internal"})
	vaulttest.Write(t, m+"/roles/r", map[string]interface{}{
		"scopes": "orders:read,orders:refund", "environment": "prod", "audiences": "orders-api",
		"verify_response_fields": "owner",
	})
	vaulttest.Write(t, m+"/roles/limited", map[string]interface{}{
		"scopes": "orders:read", "environment": "prod", "audiences": "orders-api",
		"rate_limit": 1, "rate_limit_window": "1h",
	})
	issue := func(name, role string, extra map[string]interface{}) (string, string) {
		data := map[string]interface{}{"role": role}
		for k, v := range extra {
			data[k] = v
		}
		s := vaulttest.Write(t, m+"/keys/svc/"+name, data)
		return s.Data["key"].(string), s.Data["key_id"].(string)
	}
	valid, validID := issue("valid", "r", map[string]interface{}{"scopes": "orders:read"})
	revoked, _ := issue("revoked", "r", nil)
	vaulttest.Write(t, m+"/keys/svc/revoked/revoke", map[string]interface{}{"reason": "test"})
	limited, _ := issue("limited", "limited", nil)

	app := &upstream{}
	srv := httptest.NewServer(app) // 127.0.0.1
	t.Cleanup(srv.Close)
	token := gatewayToken(t, m)
	vault, err := url.Parse(vaulttest.Shared.Addr)
	if err != nil {
		t.Fatal(err)
	}
	site := nginxSite{
		Listen: freeAddr(t), Vault: vault.Host, Upstream: strings.TrimPrefix(srv.URL, "http://"),
		Mount: m, Token: token,
	}
	startNginx(t, site)

	// A valid key: the upstream answers, and sees the identity (not the
	// key, not what the caller claimed to be).
	a := get(t, site.Listen, "/orders/42", map[string]string{"X-Api-Key": valid, "X-Apikeys-Client": "admin", "X-Apikeys-Scope": "*"})
	if a.status != 200 || a.body != "hello from upstream\n" {
		t.Fatalf("valid key: %d %q", a.status, a.body)
	}
	seen := app.take()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d requests", len(seen))
	}
	for name, want := range map[string]string{
		"X-Apikeys-Client": "svc",
		"X-Apikeys-Key-Id": validID,
		"X-Apikeys-Scope":  "orders:read",
		"X-Apikeys-Owner":  "Team%20Orders%20%28on-call%29",
		"X-Api-Key":        "",
	} {
		if got := seen[0].Values(name); (want == "" && len(got) != 0) || (want != "" && (len(got) != 1 || got[0] != want)) {
			t.Errorf("upstream header %s: %q, want %q", name, got, want)
		}
	}
	for name, values := range seen[0] {
		for _, v := range values {
			if strings.Contains(v, valid) {
				t.Errorf("upstream header %s carries the key", name)
			}
		}
	}

	// Refused: the caller gets the status, the upstream nothing.
	for _, tc := range []struct {
		what, path, key string
		status          int
		code            string
	}{
		{"revoked", "/orders/42", revoked, 403, "revoked"},
		{"wrong scope", "/refunds/42", valid, 403, "forbidden_scope"},
		{"missing", "/orders/42", "", 401, "missing_key"},
		{"malformed", "/orders/42", "not-a-key", 401, "malformed"},
	} {
		h := map[string]string{}
		if tc.key != "" {
			h["X-Api-Key"] = tc.key
		}
		a := get(t, site.Listen, tc.path, h)
		if a.status != tc.status || !strings.Contains(a.body, tc.code) {
			t.Errorf("%s: %d %q, want %d with %s", tc.what, a.status, a.body, tc.status, tc.code)
		}
		if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", tc.what)
		}
	}
	if n := len(app.take()); n != 0 {
		t.Fatalf("refused requests reached the upstream: %d", n)
	}

	// A location that names no scope fails closed, and says it is the
	// gateway's fault.
	if a := get(t, site.Listen, "/unconfigured", map[string]string{"X-Api-Key": valid}); a.status != 500 || !strings.Contains(a.body, "gateway_error") {
		t.Fatalf("location without a scope: %d %q", a.status, a.body)
	}

	// Rate limited: 429 with Retry-After, where nginx alone would say 500.
	if a := get(t, site.Listen, "/orders/1", map[string]string{"X-Api-Key": limited}); a.status != 200 {
		t.Fatalf("limited key, first request: %d %q", a.status, a.body)
	}
	a = get(t, site.Listen, "/orders/2", map[string]string{"X-Api-Key": limited})
	retry, err := strconv.Atoi(a.header.Get("Retry-After"))
	if a.status != 429 || err != nil || retry < 1 || retry > 3600 {
		t.Fatalf("limited key, second request: %d Retry-After %q %q", a.status, a.header.Get("Retry-After"), a.body)
	}
	if n := len(app.take()); n != 1 {
		t.Fatalf("upstream saw %d requests of the limited key, want 1", n)
	}

	// The keys reached Vault only in a header: neither its audit log nor
	// its server log holds one.
	vaulttest.NoKeyInLogs(t, valid, revoked, limited)

	// Vault refusing the gateway itself (its token revoked) is the
	// gateway's failure, a 500, never a 403 blamed on the caller's key.
	if err := vaulttest.Client(t).Auth().Token().RevokeOrphan(token); err != nil {
		t.Fatal(err)
	}
	if a := get(t, site.Listen, "/orders/42", map[string]string{"X-Api-Key": valid}); a.status != 500 || !strings.Contains(a.body, "gateway_misconfigured") {
		t.Fatalf("revoked gateway token: %d %q", a.status, a.body)
	}
}
