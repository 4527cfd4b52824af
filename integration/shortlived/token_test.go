package shortlived

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// tokenClaims are the claims of an exchanged token.
type tokenClaims struct {
	jwt.Claims
	Scope string `json:"scope"`
}

// verifyOffline checks tok against set with go-jose, as a resource server
// does: EdDSA only, key chosen by kid, then iss/aud/exp/nbf.
func verifyOffline(tok string, set jose.JSONWebKeySet, iss, aud string, at time.Time) (*tokenClaims, error) {
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, err
	}
	var c tokenClaims
	if err := parsed.Claims(set, &c); err != nil {
		return nil, err
	}
	if err := c.Claims.ValidateWithLeeway(jwt.Expected{Issuer: iss, AnyAudience: jwt.Audience{aud}, Time: at}, 0); err != nil {
		return nil, err
	}
	return &c, nil
}

func exchange(t *testing.T, m string, data map[string]interface{}) map[string]interface{} {
	t.Helper()
	return write(t, m+"/token", data).Data
}

func TestTokenExchangeHappyPath(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{"token_issuer": "https://vault.example.internal/v1/" + m, "token_ttl": "2m"})
	setup(t, m, "acme", "internal", "svc", map[string]interface{}{"audiences": "orders-api,billing-api"})
	key := write(t, m+"/keys/acme/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)

	before := time.Now().Truncate(time.Second)
	got := exchange(t, m, map[string]interface{}{"key": key, "audience": "orders-api", "scope": "orders:read"})
	tok := got["token"].(string)
	if strings.Count(tok, ".") != 2 || got["kid"] == "" {
		t.Fatalf("exchange = %v", got)
	}
	exp, err := time.Parse(time.RFC3339, got["expires_at"].(string))
	if err != nil || exp.Sub(before) > 2*time.Minute+time.Second || exp.Sub(before) < 2*time.Minute-5*time.Second {
		t.Fatalf("expires_at = %v (%v)", got["expires_at"], err)
	}

	// A resource server verifies it offline against the public JWKS.
	set := fetchJWKS(t, m)
	c, err := verifyOffline(tok, set, "https://vault.example.internal/v1/"+m, "orders-api", time.Now())
	if err != nil {
		t.Fatalf("offline verification: %v", err)
	}
	if c.Subject != "acme" || c.Scope != "orders:read" || c.ID == "" || c.IssuedAt == nil || c.NotBefore == nil ||
		!c.Expiry.Time().Equal(exp) || len(c.Audience) != 1 {
		t.Fatalf("claims = %+v", c)
	}
	parsed, _ := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if h := parsed.Headers[0]; h.KeyID != got["kid"] || h.Algorithm != "EdDSA" {
		t.Fatalf("header = %+v", h)
	}
	// Another audience of the key is refused by the verifier.
	if _, err := verifyOffline(tok, set, "https://vault.example.internal/v1/"+m, "billing-api", time.Now()); err == nil {
		t.Fatal("token verified for an audience it was not issued for")
	}
	// Without scope the token carries all effective scopes.
	all := exchange(t, m, map[string]interface{}{"key": key, "audience": "billing-api"})
	c, err = verifyOffline(all["token"].(string), set, "https://vault.example.internal/v1/"+m, "billing-api", time.Now())
	if err != nil || c.Scope != "orders:read orders:write" {
		t.Fatalf("all-scopes token: %+v %v", c, err)
	}
	// Each exchange is in the lifecycle log, without the token.
	evs := logEvents(t, m, "token.issued")
	if len(evs) != 2 || details(evs[0])["jti"] != c0ID(t, tok) {
		t.Fatalf("token events = %v", evs)
	}
	for _, ev := range evs {
		for _, v := range details(ev) {
			if s, _ := v.(string); strings.Contains(s, tok[:20]) {
				t.Fatal("token in the lifecycle log")
			}
		}
	}
	// Neither the key nor the token reaches Vault's audit log or server log
	// in the clear (the audit device HMACs them).
	for _, path := range []string{vaulttest.Shared.AuditPath, vaulttest.Shared.LogPath} {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), key) || strings.Contains(string(raw), strings.Split(tok, ".")[2]) {
			t.Fatalf("a secret is in the clear in %s", path)
		}
	}
}

func c0ID(t *testing.T, tok string) string {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func TestTokenExpiryNeverBeyondLease(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "external", "partner", map[string]interface{}{"ttl": "30s", "max_ttl": "1m"})
	s := read(t, m+"/creds/acme/partner")
	got := exchange(t, m, map[string]interface{}{"key": s.Data["key"], "audience": "orders-api"})
	exp, _ := time.Parse(time.RFC3339, got["expires_at"].(string))
	keyExp, _ := time.Parse(time.RFC3339, s.Data["expires_at"].(string))
	if exp.After(keyExp) || time.Until(exp) > 31*time.Second {
		t.Fatalf("token expires %s, after the leased key (%s)", exp, keyExp)
	}
}

func TestTokenExchangeRefusals(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "internal", "svc", nil)
	key := write(t, m+"/keys/acme/main", map[string]interface{}{"role": "svc", "scopes": "orders:read"}).Data["key"].(string)
	revoked := write(t, m+"/keys/acme/old", map[string]interface{}{"role": "svc"}).Data["key"].(string)
	if _, err := client(t).Logical().Delete(m + "/keys/acme/old"); err != nil {
		t.Fatal(err)
	}
	// A well-formed key of another mount is unknown here.
	other := newMount(t)
	setup(t, other, "acme", "internal", "svc", nil)
	foreign := write(t, other+"/keys/acme/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)
	cases := []struct {
		name string
		data map[string]interface{}
		want string
	}{
		{"unknown key", map[string]interface{}{"key": foreign, "audience": "orders-api"}, "code=not_found"},
		{"malformed key", map[string]interface{}{"key": "not-a-key", "audience": "orders-api"}, "code=malformed"},
		{"revoked key", map[string]interface{}{"key": revoked, "audience": "orders-api"}, "code=revoked"},
		{"audience the key lacks", map[string]interface{}{"key": key, "audience": "billing-api"}, "code=forbidden_audience"},
		{"scope the key lacks", map[string]interface{}{"key": key, "audience": "orders-api", "scope": "orders:write"}, "code=forbidden_scope"},
		{"no audience", map[string]interface{}{"key": key}, "audience is required"},
		{"no key", map[string]interface{}{"audience": "orders-api"}, "key is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client(t).Logical().Write(m+"/token", tc.data)
			expectStatus(t, err, 400, tc.want)
		})
	}
	if evs := logEvents(t, m, "token.issued"); len(evs) != 0 {
		t.Fatalf("refused exchanges logged tokens: %v", evs)
	}
}

func TestJWKSUnauthenticatedAndRotation(t *testing.T) {
	m := newMount(t)
	// Mounting creates the first signing key, so verifiers can load the
	// JWKS before the first exchange; anonymous reads never change it.
	first := fetchJWKS(t, m)
	if len(first.Keys) != 1 {
		t.Fatalf("jwks of a new mount = %+v", first)
	}
	if again := fetchJWKS(t, m); len(again.Keys) != 1 || again.Keys[0].KeyID != first.Keys[0].KeyID {
		t.Fatalf("a second anonymous read changed the key set: %+v", again)
	}
	write(t, m+"/config", map[string]interface{}{"token_ttl": "10s", "signing_key_rotation_period": "1h"})
	// The mount's first key may have signed tokens under the default
	// token_ttl (5m), so once rotated out it would stay published that
	// long; this test starts from a key that only signs under 10s.
	fresh := write(t, m+"/jwks/rotate", map[string]interface{}{"revoke_previous": true}).Data["kid"].(string)
	setup(t, m, "acme", "internal", "svc", nil)
	key := write(t, m+"/keys/acme/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)
	iss := "vault-plugin-secrets-apikeys/" + m

	t1 := exchange(t, m, map[string]interface{}{"key": key, "audience": "orders-api"})
	k1 := t1["kid"].(string)
	if k1 != fresh || k1 == first.Keys[0].KeyID {
		t.Fatalf("first token signed by %s, want the current key %s", k1, fresh)
	}
	// jwks is served to callers without a token; other paths are not.
	if set := fetchJWKS(t, m); len(set.Keys) != 1 || set.Keys[0].KeyID != k1 || !set.Keys[0].IsPublic() {
		t.Fatalf("jwks = %+v", set)
	}
	anon := tokenClient(t, "")
	_, err := anon.Logical().Write(m+"/jwks/rotate", nil)
	expectStatus(t, err, 403, "")

	// An operator rotates: new tokens use the new key, old ones still verify.
	rot := write(t, m+"/jwks/rotate", nil).Data
	k2 := rot["kid"].(string)
	if k2 == k1 {
		t.Fatal("rotation kept the key id")
	}
	t2 := exchange(t, m, map[string]interface{}{"key": key, "audience": "orders-api"})
	if t2["kid"] != k2 {
		t.Fatalf("token after rotation signed by %v, want %s", t2["kid"], k2)
	}
	write(t, m+"/jwks/rotate", nil) // a second rotation within token_ttl
	set := fetchJWKS(t, m)
	if len(set.Keys) != 3 {
		t.Fatalf("after two rotations jwks has %d keys, want current + 2 previous", len(set.Keys))
	}
	for _, tok := range []map[string]interface{}{t1, t2} {
		if _, err := verifyOffline(tok["token"].(string), set, iss, "orders-api", time.Now()); err != nil {
			t.Fatalf("token of kid %v no longer verifies after rotation: %v", tok["kid"], err)
		}
	}
	// Once a rotated-out key's tokens have expired (token_ttl after its
	// rotation) it leaves the set: first k1, then k2, even though no
	// rotation follows (a key rotated out after a compromise must not stay
	// trusted until the next one).
	published := func(kid string) bool {
		for _, k := range fetchJWKS(t, m).Keys {
			if k.KeyID == kid {
				return true
			}
		}
		return false
	}
	for _, rotated := range []struct {
		kid string
		tok map[string]interface{}
	}{{k1, t1}, {k2, t2}} {
		exp, _ := time.Parse(time.RFC3339, rotated.tok["expires_at"].(string))
		waitFor(t, "signing key "+rotated.kid+" to leave jwks after its tokens expired", 30*time.Second, func() bool { return !published(rotated.kid) })
		if time.Now().Before(exp) {
			t.Fatalf("key %s left jwks before its token expired (%s)", rotated.kid, exp)
		}
	}
	k3 := fetchJWKS(t, m).Keys
	if len(k3) != 1 || k3[0].KeyID == k1 || k3[0].KeyID == k2 {
		t.Fatalf("jwks after the rotated-out keys' tokens expired = %+v, want only the current key", k3)
	}

	// After a suspected compromise, revoke_previous withdraws the outgoing
	// key at once: its still-unexpired token stops verifying.
	t3 := exchange(t, m, map[string]interface{}{"key": key, "audience": "orders-api"})
	if t3["kid"] != k3[0].KeyID {
		t.Fatalf("token signed by %v, want the current key %s", t3["kid"], k3[0].KeyID)
	}
	rot = write(t, m+"/jwks/rotate", map[string]interface{}{"revoke_previous": true}).Data
	if rot["revoked_kid"] != k3[0].KeyID {
		t.Fatalf("jwks/rotate revoke_previous = %v", rot)
	}
	set = fetchJWKS(t, m)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != rot["kid"] {
		t.Fatalf("jwks right after revoke_previous = %+v", set)
	}
	if _, err := verifyOffline(t3["token"].(string), set, iss, "orders-api", time.Now()); err == nil {
		t.Fatal("a token of the withdrawn signing key still verifies")
	}
	evs := logEvents(t, m, "signing_key.rotated")
	if d := details(evs[len(evs)-1]); d["revoke_previous"] != "true" || d["previous_kid"] != k3[0].KeyID {
		t.Fatalf("last signing_key.rotated details = %v", d)
	}
}
