package verifier

import (
	"context"
	"errors"
	"net/http/httptrace"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/apikeys/vault-plugin-secrets-apikeys/verifier"
)

func keyVerifier(t *testing.T, m string, mod func(*verifier.KeyConfig)) *verifier.KeyVerifier {
	t.Helper()
	cfg := verifier.KeyConfig{Addr: vaulttest.Shared.Addr, Mount: m, Token: vaulttest.Shared.Token, Audience: "orders-api"}
	if mod != nil {
		mod(&cfg)
	}
	v, err := verifier.NewKeyVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Both forms of verify, through the library: an active key's details, and
// each refusal as its kind with the plugin's code.
func TestKeyVerifierAgainstVault(t *testing.T) {
	m := newMount(t)
	key := setup(t, m, map[string]interface{}{"verify_response_fields": "owner"})
	ctx := context.Background()
	for _, form := range []struct {
		name string
		post bool
	}{{"GET", false}, {"POST", true}} {
		t.Run(form.name, func(t *testing.T) {
			v := keyVerifier(t, m, func(c *verifier.KeyConfig) { c.UsePOST = form.post })
			info, err := v.Verify(ctx, key, verifier.KeyRequest{Scopes: []string{"orders:read"}, Environment: "prod"})
			if err != nil {
				t.Fatal(err)
			}
			if info.Client != "acme" || info.Role != "svc" || info.KeyID == "" || info.Environment != "prod" || info.Owner != "team-acme" ||
				!info.HasScope("orders:write") || len(info.Audiences) != 1 || info.Version != 1 || info.State != "active" || info.IssuedAt.IsZero() {
				t.Fatalf("info = %+v", info)
			}
			_, err = v.Verify(ctx, key, verifier.KeyRequest{Scopes: []string{"orders:delete"}})
			wantKind(t, err, verifier.ErrForbidden, "forbidden_scope")
			_, err = v.Verify(ctx, key, verifier.KeyRequest{Audience: "billing-api"})
			wantKind(t, err, verifier.ErrForbidden, "forbidden_audience")
			_, err = v.Verify(ctx, key, verifier.KeyRequest{Environment: "dev"})
			wantKind(t, err, verifier.ErrForbidden, "forbidden_environment")
			_, err = v.Verify(ctx, key[:len(key)-1]+flip(key[len(key)-1]), verifier.KeyRequest{})
			wantKind(t, err, verifier.ErrInvalid, "malformed")
		})
	}

	// Revoked: the very next verify refuses it, in both forms.
	write(t, m+"/keys/acme/main/revoke", map[string]interface{}{"reason": "verifier library test"})
	for _, post := range []bool{false, true} {
		_, err := keyVerifier(t, m, func(c *verifier.KeyConfig) { c.UsePOST = post }).Verify(ctx, key, verifier.KeyRequest{})
		wantKind(t, err, verifier.ErrRevoked, "revoked")
	}
}

// flip changes a key's last character so its checksum no longer matches.
func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

// Vault refusing the question is not the key's fault: a token without the
// policy, a mount that does not pass X-Api-Key through (GET form), Vault
// not listening.
func TestKeyVerifierVaultRefusalsAreNotKeyRefusals(t *testing.T) {
	m := newMount(t)
	key := setup(t, m, nil)
	ctx := context.Background()
	_, err := keyVerifier(t, m, func(c *verifier.KeyConfig) { c.Token = "hvs.not-a-token" }).Verify(ctx, key, verifier.KeyRequest{})
	wantKind(t, err, verifier.ErrRequest, "")
	if verifier.HTTPStatus(err) != 503 {
		t.Fatalf("HTTPStatus = %d, want 503", verifier.HTTPStatus(err))
	}

	write(t, "sys/mounts/"+m+"/tune", map[string]interface{}{"passthrough_request_headers": []string{}})
	_, err = keyVerifier(t, m, nil).Verify(ctx, key, verifier.KeyRequest{})
	wantKind(t, err, verifier.ErrRequest, "")
	if _, err := keyVerifier(t, m, func(c *verifier.KeyConfig) { c.UsePOST = true }).Verify(ctx, key, verifier.KeyRequest{}); err != nil {
		t.Fatalf("POST needs no passthrough: %v", err)
	}

	_, err = keyVerifier(t, m, func(c *verifier.KeyConfig) { c.Addr = "http://127.0.0.1:1" }).Verify(ctx, key, verifier.KeyRequest{})
	wantKind(t, err, verifier.ErrUnavailable, "")
}

// Requests from one verifier reuse their connection: after the first, no
// request dials.
func TestKeyVerifierReusesConnections(t *testing.T) {
	m := newMount(t)
	key := setup(t, m, nil)
	v := keyVerifier(t, m, nil)
	var dials, reused atomic.Int64
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		ConnectStart: func(string, string) { dials.Add(1) },
		GotConn: func(i httptrace.GotConnInfo) {
			if i.Reused {
				reused.Add(1)
			}
		},
	})
	for i := 0; i < 50; i++ {
		if _, err := v.Verify(ctx, key, verifier.KeyRequest{}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 { // refusals too must leave the connection reusable
			_, err := v.Verify(ctx, key, verifier.KeyRequest{Scopes: []string{"orders:delete"}})
			wantKind(t, err, verifier.ErrForbidden, "forbidden_scope")
		}
	}
	if dials.Load() != 1 || reused.Load() != 54 {
		t.Fatalf("55 sequential verifies dialed %d times and reused a connection %d times, want 1 and 54", dials.Load(), reused.Load())
	}
}

// The answer cache serves an active answer for at most CacheTTL: a key
// revoked in Vault is still accepted from the cache within that bound and
// refused after it; refusals and rate-limited keys' answers are never
// cached.
func TestKeyVerifierCacheStalenessBound(t *testing.T) {
	m := newMount(t)
	key := setup(t, m, nil)
	ctx := context.Background()
	clk := clock.NewFake(time.Now())
	v := keyVerifier(t, m, func(c *verifier.KeyConfig) { c.CacheTTL, c.Now = 30*time.Second, clk.Now })
	req := verifier.KeyRequest{Scopes: []string{"orders:read"}}
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, key, req); err != nil {
			t.Fatal(err)
		}
	}
	if v.Requests() != 1 {
		t.Fatalf("3 verifies of one key sent %d requests, want 1 (cached)", v.Requests())
	}
	// Another request for the same key is another answer.
	if _, err := v.Verify(ctx, key, verifier.KeyRequest{Scopes: []string{"orders:write"}}); err != nil || v.Requests() != 2 {
		t.Fatalf("another scope: err %v, requests %d, want a second request", err, v.Requests())
	}

	write(t, m+"/keys/acme/main/revoke", map[string]interface{}{"reason": "verifier cache test"})
	clk.Advance(30*time.Second - time.Millisecond)
	if _, err := v.Verify(ctx, key, req); err != nil {
		t.Fatalf("within CacheTTL the cached answer stands (the documented staleness): %v", err)
	}
	clk.Advance(time.Millisecond)
	_, err := v.Verify(ctx, key, req)
	wantKind(t, err, verifier.ErrRevoked, "revoked")
	_, err = v.Verify(ctx, key, req)
	wantKind(t, err, verifier.ErrRevoked, "revoked")
	if v.Requests() != 4 {
		t.Fatalf("requests = %d, want 4: a refusal is asked again every time", v.Requests())
	}

	// A rate-limited role: every verify reaches Vault, which counts it.
	lm := newMount(t)
	limited := setup(t, lm, map[string]interface{}{"rate_limit": 2, "rate_limit_window": 3600})
	lv := keyVerifier(t, lm, func(c *verifier.KeyConfig) { c.CacheTTL, c.Now = 30*time.Second, clk.Now })
	for i := 0; i < 2; i++ {
		info, err := lv.Verify(ctx, limited, verifier.KeyRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if info.RateLimit == nil || info.RateLimit.Limit != 2 || info.RateLimit.Remaining != 1-i {
			t.Fatalf("rate limit = %+v", info.RateLimit)
		}
	}
	_, err = lv.Verify(ctx, limited, verifier.KeyRequest{})
	wantKind(t, err, verifier.ErrRateLimited, "rate_limited")
	var e *verifier.Error
	if !errors.As(err, &e) || e.RetryAfter <= 0 || verifier.HTTPStatus(err) != 429 {
		t.Fatalf("rate_limited: %v, RetryAfter %v", err, e)
	}
	if lv.Requests() != 3 {
		t.Fatalf("requests = %d, want 3: answers with a rate limit are not cached", lv.Requests())
	}
}
