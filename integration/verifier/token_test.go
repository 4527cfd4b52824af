package verifier

import (
	"context"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/clock"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
	"github.com/apikeys/vault-plugin-secrets-apikeys/verifier"
)

// exchange trades key for a token for orders-api with scope.
func exchange(t *testing.T, m, key, scope string) (token, kid string) {
	t.Helper()
	d := write(t, m+"/token", map[string]interface{}{"key": key, "audience": "orders-api", "scope": scope}).Data
	return d["token"].(string), d["kid"].(string)
}

// A token from the mount's exchange verifies offline with the library
// against the mount's JWKS; a token of a key rotated in since the last
// fetch makes it fetch again; a signing key withdrawn in Vault stops
// verifying once the library's set is RefreshInterval old.
func TestTokenVerifierAgainstVault(t *testing.T) {
	m := newMount(t)
	write(t, m+"/config", map[string]interface{}{"token_ttl": "10m"})
	key := setup(t, m, nil)
	ctx := context.Background()
	// The library runs on a fake clock, started at Vault's time, so the
	// refresh interval can pass without waiting for it.
	clk := clock.NewFake(time.Now())
	tokens, err := verifier.NewTokenVerifier(verifier.TokenConfig{
		JWKSURL:            vaulttest.Shared.Addr + "/v1/" + m + "/jwks",
		Issuer:             "vault-plugin-secrets-apikeys/" + m,
		Audience:           "orders-api",
		RefreshInterval:    time.Minute,
		MinRefreshInterval: time.Second,
		Now:                clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}

	first, firstKID := exchange(t, m, key, "orders:read")
	c, err := tokens.Verify(ctx, first, "orders:read")
	if err != nil {
		t.Fatalf("a token of the mount: %v", err)
	}
	if c.Subject != "acme" || c.KeyID != firstKID || !c.HasScope("orders:read") || c.HasScope("orders:write") || c.ID == "" {
		t.Fatalf("claims = %+v", c)
	}
	_, err = tokens.Verify(ctx, first, "orders:write")
	wantKind(t, err, verifier.ErrForbidden, verifier.CodeForbiddenScope)
	billing, err := verifier.NewTokenVerifier(verifier.TokenConfig{
		JWKSURL: vaulttest.Shared.Addr + "/v1/" + m + "/jwks", Issuer: "vault-plugin-secrets-apikeys/" + m, Audience: "billing-api", Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = billing.Verify(ctx, first)
	wantKind(t, err, verifier.ErrForbidden, verifier.CodeForbiddenAudience)

	// Rotation: the new key signs; its first token makes the library fetch
	// again (an unknown kid), and the old key's token still verifies (the
	// old key stays published for token_ttl).
	write(t, m+"/jwks/rotate", nil)
	clk.Advance(time.Second) // past the rate cap
	second, secondKID := exchange(t, m, key, "orders:read")
	if secondKID == firstKID {
		t.Fatal("the rotation did not change the signing key")
	}
	before := tokens.Fetches()
	if _, err := tokens.Verify(ctx, second, "orders:read"); err != nil {
		t.Fatalf("a token of the rotated-in key: %v", err)
	}
	if got := tokens.Fetches(); got != before+1 {
		t.Fatalf("fetches = %d after a new kid, want %d", got, before+1)
	}
	if _, err := tokens.Verify(ctx, first); err != nil {
		t.Fatalf("a token of the rotated-out key within token_ttl: %v", err)
	}

	// Suspected compromise: every key but a fresh one is withdrawn. The
	// library still holds the withdrawn keys until its set is
	// RefreshInterval old (the documented bound), then refuses their
	// tokens.
	write(t, m+"/jwks/rotate", map[string]interface{}{"revoke_previous": true})
	if _, err := tokens.Verify(ctx, second); err != nil {
		t.Fatalf("within RefreshInterval of the last fetch: %v", err)
	}
	clk.Advance(time.Minute)
	for _, tok := range []string{first, second} {
		_, err := tokens.Verify(ctx, tok)
		wantKind(t, err, verifier.ErrInvalid, verifier.CodeUnknownKey)
	}
	third, thirdKID := exchange(t, m, key, "orders:read")
	if _, err := tokens.Verify(ctx, third); err != nil {
		t.Fatalf("a token of the fresh key: %v", err)
	}

	// jwks/revoke of one key, applied at once by Refresh.
	write(t, m+"/jwks/rotate", nil)
	clk.Advance(time.Second)
	fourth, _ := exchange(t, m, key, "orders:read")
	if _, err := tokens.Verify(ctx, fourth); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Verify(ctx, third); err != nil {
		t.Fatalf("the rotated-out key before its withdrawal: %v", err)
	}
	write(t, m+"/jwks/revoke", map[string]interface{}{"kid": thirdKID})
	clk.Advance(time.Second)
	if err := tokens.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = tokens.Verify(ctx, third)
	wantKind(t, err, verifier.ErrInvalid, verifier.CodeUnknownKey)
	if _, err := tokens.Verify(ctx, fourth); err != nil {
		t.Fatalf("the current key after a withdrawal of another: %v", err)
	}
}
