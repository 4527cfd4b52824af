package incident

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// vaGet sends a GET verify over real HTTP with the key in X-Api-Key and
// returns the status, the headers and the decoded body.
func vaGet(t *testing.T, token, m, key string, q url.Values) (int, http.Header, map[string]interface{}) {
	t.Helper()
	u := vaulttest.Shared.Addr + "/v1/" + m + "/verify"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("X-Vault-Token", token)
	req.Header.Set("X-Api-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]interface{}
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, resp.Header, body
}

// A role that names audiences needs one; the mount setting relaxes it.
func TestVerifyAnswerAudienceRequired(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", map[string]interface{}{"audiences": "orders-api"})
	key := issue(t, m, "svc", "k", "r")
	if c := verifyCode(t, m, key, nil); c != "forbidden_audience" {
		t.Fatalf("no audience: %s", c)
	}
	if c := verifyCode(t, m, key, map[string]interface{}{"audience": "orders-api"}); c != "active" {
		t.Fatalf("own audience: %s", c)
	}
	write(t, m+"/config", map[string]interface{}{"verify_audience_optional": true})
	if c := verifyCode(t, m, key, nil); c != "active" {
		t.Fatalf("relaxed: %s", c)
	}
	if c := verifyCode(t, m, key, map[string]interface{}{"audience": "billing-api"}); c != "forbidden_audience" {
		t.Fatalf("other audience, relaxed: %s", c)
	}
}

// The role's verify_response_fields and the rate-limit state reach the
// gateway on both forms; the RateLimit-* and Retry-After headers pass
// through Vault on the GET form.
func TestVerifyAnswerFieldsAndRateLimit(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", map[string]interface{}{
		"rate_limit": 3, "rate_limit_window": "1h", "verify_response_fields": "owner,key_metadata",
	})
	sec := write(t, m+"/keys/svc/k", map[string]interface{}{"role": "r", "metadata": "app=shop"})
	key := sec.Data["key"].(string)
	d := write(t, m+"/verify", map[string]interface{}{"key": key}).Data
	rl, _ := d["rate_limit"].(map[string]interface{})
	if d["owner"] != "team-svc" || d["key_metadata"].(map[string]interface{})["app"] != "shop" || num(t, rl["limit"]) != 3 || num(t, rl["remaining"]) != 2 {
		t.Fatalf("POST answer: %v", d)
	}
	if _, ok := d["client_metadata"]; ok {
		t.Fatalf("a field the role does not list: %v", d)
	}
	// The mount allows the headers by name (allowed_response_headers, set
	// as make dev sets it): Vault drops a plugin's headers otherwise.
	write(t, m+"/clients/svc", map[string]interface{}{"rate_limit": 1000}) // looser than the key's: the answer names the tightest
	// POST and GET draw from one budget: the second of three.
	if d := write(t, m+"/verify", map[string]interface{}{"key": key}).Data; num(t, d["rate_limit"].(map[string]interface{})["remaining"]) != 1 {
		t.Fatalf("second POST: %v", d)
	}
	status, h, body := vaGet(t, vaulttest.Shared.Token, m, key, nil)
	if status != 200 || body["active"] != true || body["owner"] != "team-svc" {
		t.Fatalf("GET: %d %v", status, body)
	}
	t.Logf("GET headers of an active answer: RateLimit-Limit=%q RateLimit-Remaining=%q RateLimit-Reset=%q",
		h.Get("RateLimit-Limit"), h.Get("RateLimit-Remaining"), h.Get("RateLimit-Reset"))
	if h.Get("RateLimit-Limit") != "3" || h.Get("RateLimit-Remaining") != "0" || h.Get("RateLimit-Reset") == "" {
		t.Errorf("RateLimit headers did not pass through Vault: %v", h)
	}
	status, h, body = vaGet(t, vaulttest.Shared.Token, m, key, nil)
	if status != 200 || body["code"] != "rate_limited" || body["retry_after"] == nil {
		t.Fatalf("GET over the limit: %d %v", status, body)
	}
	t.Logf("GET headers of rate_limited: Retry-After=%q", h.Get("Retry-After"))
	if h.Get("Retry-After") == "" {
		t.Errorf("Retry-After did not pass through Vault: %v", h)
	}
	d = write(t, m+"/verify", map[string]interface{}{"key": key}).Data
	if d["code"] != "rate_limited" || num(t, d["retry_after"]) < 3500 {
		t.Fatalf("POST over the limit: %v", d)
	}
}

// The bound gateway policy lets a token verify for its own audience only.
func TestVerifyAnswerGatewayPolicyBoundToAudience(t *testing.T) {
	m := newMount(t)
	setupClientRole(t, m, "svc", "internal", "r", map[string]interface{}{"audiences": "orders-api,billing-api"})
	key := issue(t, m, "svc", "k", "r")
	root, err := vaulttest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile(filepath.Join(root, "bootstrap", "policies", "gateway-bound.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	c := client(t)
	name := "gw-" + m
	if err := c.Sys().PutPolicy(name, strings.ReplaceAll(string(rules), `"apikeys/verify"`, `"`+m+`/verify"`)); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Auth().Token().Create(&apiTokenRequest{Policies: []string{name}, NoDefaultPolicy: true})
	if err != nil {
		t.Fatal(err)
	}
	gw, _ := c.Clone()
	gw.SetToken(tok.Auth.ClientToken)
	post := func(aud string) int {
		data := map[string]interface{}{"key": key}
		if aud != "" {
			data["audience"] = aud
		}
		sec, err := gw.Logical().Write(m+"/verify", data)
		if err != nil {
			if re, ok := err.(*apiResponseError); ok {
				return re.StatusCode
			}
			t.Fatalf("POST %q: %v", aud, err)
		}
		if sec.Data["active"] != true {
			t.Fatalf("POST %q: %v", aud, sec.Data)
		}
		return 200
	}
	if s := post("orders-api"); s != 200 {
		t.Fatalf("own audience: %d", s)
	}
	if s := post("billing-api"); s != 403 {
		t.Fatalf("other audience: %d, want 403", s)
	}
	if s := post(""); s != 403 {
		t.Fatalf("no audience: %d, want 403", s)
	}
	if s, _, body := vaGet(t, tok.Auth.ClientToken, m, key, url.Values{"audience": {"orders-api"}}); s != 200 || body["active"] != true {
		t.Fatalf("GET own audience: %d %v", s, body)
	}
	s, _, _ := vaGet(t, tok.Auth.ClientToken, m, key, url.Values{"audience": {"billing-api"}})
	t.Logf("GET with another audience: HTTP %d", s)
	if s != 403 {
		t.Errorf("GET other audience: %d, want 403", s)
	}
	s, _, _ = vaGet(t, tok.Auth.ClientToken, m, key, nil)
	t.Logf("GET without audience: HTTP %d", s)
	if s != 403 {
		t.Errorf("GET no audience: %d, want 403", s)
	}
}

type (
	apiTokenRequest  = api.TokenCreateRequest
	apiResponseError = api.ResponseError
)
