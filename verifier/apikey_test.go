package verifier

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
)

// The cache key is an HMAC of the key and every request field: it never
// holds the key, differs when any field differs, and differs between two
// verifiers (each has its own secret).
func TestAnswerCacheKeyIsAnHMACOfKeyAndRequest(t *testing.T) {
	c, err := newAnswerCache(10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	key := "ak_prod_0123456789abcdefghijABCDEFGHIJ"
	base := KeyRequest{Scopes: []string{"orders:write", "orders:read"}, Audience: "orders-api", Environment: "prod", ClientIP: "10.0.0.1"}
	k := c.keyFor(key, base)
	if strings.Contains(string(k[:]), key) || strings.Contains(string(k[:]), key[8:20]) {
		t.Fatal("the cache key holds the key")
	}
	reordered := base
	reordered.Scopes = []string{"orders:read", "orders:write"}
	if c.keyFor(key, reordered) != k {
		t.Fatal("the order of scopes must not change the cache key")
	}
	variants := map[string]func(*KeyRequest) string{
		"another key":         func(*KeyRequest) string { return key + "x" },
		"another scope":       func(r *KeyRequest) string { r.Scopes = []string{"orders:read"}; return key },
		"another audience":    func(r *KeyRequest) string { r.Audience = "billing-api"; return key },
		"another environment": func(r *KeyRequest) string { r.Environment = "dev"; return key },
		"another client_ip":   func(r *KeyRequest) string { r.ClientIP = "10.0.0.2"; return key },
		"allow_pending":       func(r *KeyRequest) string { r.AllowPending = true; return key },
		"fields run together": func(r *KeyRequest) string { r.Audience, r.Environment = "orders-apiprod", ""; return key },
	}
	for name, mod := range variants {
		r := base
		r.Scopes = append([]string(nil), base.Scopes...)
		if c.keyFor(mod(&r), r) == k {
			t.Errorf("%s: same cache key", name)
		}
	}
	other, _ := newAnswerCache(10, time.Minute)
	if other.keyFor(key, base) == k {
		t.Fatal("two verifiers must key their caches with different secrets")
	}
}

// An answer is served for CacheTTL after the request that got it was sent,
// never past the key's exp, and the cache holds at most its size.
func TestAnswerCacheStalenessBound(t *testing.T) {
	clk := clock.NewFake(start)
	c, _ := newAnswerCache(2, 30*time.Second)
	a, b, d := cacheKey{1}, cacheKey{2}, cacheKey{3}
	asked := clk.Now()
	clk.Advance(2 * time.Second) // a slow answer: the bound counts from the asking
	c.put(a, &KeyInfo{KeyID: "a"}, asked)
	if _, ok := c.get(a, asked.Add(30*time.Second-time.Nanosecond)); !ok {
		t.Fatal("within CacheTTL of asking the answer must be served")
	}
	if _, ok := c.get(a, asked.Add(30*time.Second)); ok {
		t.Fatal("CacheTTL after asking the answer must not be served")
	}
	c.put(b, &KeyInfo{KeyID: "b", Expiry: asked.Add(10 * time.Second)}, asked)
	if _, ok := c.get(b, asked.Add(10*time.Second)); ok {
		t.Fatal("an answer must not be served past the key's exp")
	}
	c.put(a, &KeyInfo{KeyID: "a"}, asked)
	c.put(b, &KeyInfo{KeyID: "b"}, asked)
	c.put(d, &KeyInfo{KeyID: "d"}, asked)
	if c.entries.Len() != 2 {
		t.Fatalf("entries = %d, want the size 2", c.entries.Len())
	}
	if _, ok := c.get(a, asked); ok {
		t.Fatal("the least recently used entry must have gone")
	}
}

// Every plugin verify code maps to one kind, and the kinds map to the
// status a gateway answers (the reverse-proxy mapping of issue 16).
func TestRefusalKindsAndStatuses(t *testing.T) {
	for code, want := range map[string]int{
		"malformed": 401, "not_found": 401, "expired": 401, "revoked": 403, "locked": 403, "disabled": 403,
		"forbidden_scope": 403, "forbidden_audience": 403, "forbidden_environment": 403, "forbidden_ip": 403,
		"rate_limited": 429, "some_future_code": 401,
	} {
		err := (&verifyAnswer{Code: code, RetryAfter: 7}).refusal()
		if got := HTTPStatus(err); got != want {
			t.Errorf("%s: HTTPStatus = %d, want %d", code, got, want)
		}
		if err.Code != code {
			t.Errorf("%s: Code = %q", code, err.Code)
		}
		if code == "rate_limited" && err.RetryAfter != 7*time.Second {
			t.Errorf("RetryAfter = %s", err.RetryAfter)
		}
	}
	for status, kind := range map[int]error{400: ErrRequest, 403: ErrRequest, 404: ErrRequest, 307: ErrUnavailable, 429: ErrUnavailable, 500: ErrUnavailable, 503: ErrUnavailable} {
		err := statusError(status, []byte(`{"errors":["permission denied"]}`))
		if !errors.Is(err, kind) || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("HTTP %d: %v, want kind %v with Vault's message", status, err, kind)
		}
		if HTTPStatus(err) != http.StatusServiceUnavailable {
			t.Errorf("HTTP %d: gateway status %d, want 503", status, HTTPStatus(err))
		}
	}
	if HTTPStatus(nil) != http.StatusOK {
		t.Fatal("HTTPStatus(nil) must be 200")
	}
}

// What cannot be a key is refused without a request, and the error never
// repeats it.
func TestKeyVerifierRefusesNonKeysLocally(t *testing.T) {
	v, err := NewKeyVerifier(KeyConfig{Addr: "http://127.0.0.1:1", Mount: "apikeys", Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ key, code string }{
		"empty":    {"", CodeMissing},
		"too long": {strings.Repeat("k", MaxKeyBytes+1), CodeMalformed},
		"newline":  {"ak_prod_abc\r\nX-Evil: 1", CodeMalformed},
		"space":    {"ak_prod abc", CodeMalformed},
	} {
		_, err := v.Verify(context.Background(), tc.key, KeyRequest{})
		wantErr(t, err, ErrInvalid, tc.code)
		if tc.key != "" && strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: the error repeats the key: %v", name, err)
		}
	}
	if v.Requests() != 0 {
		t.Fatalf("requests = %d, want none", v.Requests())
	}
	// Nothing listens on port 1: a transport failure, not a refusal.
	_, err = v.Verify(context.Background(), "ak_prod_0123456789", KeyRequest{})
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "0123456789") {
		t.Fatalf("err = %v, want ErrUnavailable without the key", err)
	}
}

func TestKeyConfigBounds(t *testing.T) {
	ok := KeyConfig{Addr: "https://vault.example:8200", Mount: "apikeys", Token: "t"}
	for _, tc := range []struct {
		name string
		mod  func(*KeyConfig)
		want string
	}{
		{"no addr", func(c *KeyConfig) { c.Addr = "" }, "Addr"},
		{"addr without scheme", func(c *KeyConfig) { c.Addr = "vault.example:8200" }, "Addr"},
		{"no mount", func(c *KeyConfig) { c.Mount = "/" }, "Mount"},
		{"no token", func(c *KeyConfig) { c.Token = "" }, "Token"},
		{"cache over the bound", func(c *KeyConfig) { c.CacheTTL = MaxCacheTTL + time.Second }, "CacheTTL"},
		{"negative size", func(c *KeyConfig) { c.CacheSize = -1 }, "CacheSize"},
	} {
		cfg := ok
		tc.mod(&cfg)
		if _, err := NewKeyVerifier(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one naming %s", tc.name, err, tc.want)
		}
	}
	v, err := NewKeyVerifier(ok)
	if err != nil {
		t.Fatal(err)
	}
	if v.endpoint != "https://vault.example:8200/v1/apikeys/verify" {
		t.Fatalf("endpoint = %s", v.endpoint)
	}
}
