package backend

import (
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/jwtsign"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func TestTokenExpiryNeverBeyondKey(t *testing.T) {
	now := testStart.Add(300 * time.Millisecond)
	ttl := 5 * time.Minute
	cases := []struct {
		name    string
		key     record.Key
		version *record.KeyVersion
		want    time.Time
		ok      bool
	}{
		{"token ttl", record.Key{}, &record.KeyVersion{State: record.StateActive}, testStart.Add(ttl), true},
		{"key expiry first", record.Key{ExpiresAt: testStart.Add(time.Minute)}, &record.KeyVersion{State: record.StateActive}, testStart.Add(time.Minute), true},
		{"grace end first", record.Key{}, &record.KeyVersion{State: record.StatePrevious, GraceEndsAt: testStart.Add(2 * time.Minute)}, testStart.Add(2 * time.Minute), true},
		{"less than a second left", record.Key{ExpiresAt: now.Add(500 * time.Millisecond)}, &record.KeyVersion{State: record.StateActive}, time.Time{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tokenExpiry(now, ttl, &tc.key, tc.version)
			if ok != tc.ok || (ok && !got.Equal(tc.want)) {
				t.Fatalf("got %s %v, want %s %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestTokenExchangeRefusesWithReason(t *testing.T) {
	e := newTestEnv(t)
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"audience": "orders-api"}, "key is required")
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"key": "ak_prod_x"}, "audience is required")
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"key": "ak_prod_x", "audience": "a", "scope": "BAD SCOPE!"}, "scope")
	// A key verify does not accept is refused with its code.
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"key": "ak_prod_unknown", "audience": "orders-api"}, "code=")
}

func TestTokenIssuer(t *testing.T) {
	req := &logical.Request{MountPoint: "apikeys/"}
	if got := tokenIssuer(&record.Config{}, req); got != "vault-plugin-secrets-apikeys/apikeys" {
		t.Fatalf("default issuer = %q", got)
	}
	if got := tokenIssuer(&record.Config{TokenIssuer: "https://vault.example.com/v1/apikeys"}, req); got != "https://vault.example.com/v1/apikeys" {
		t.Fatalf("configured issuer = %q", got)
	}
}

func TestTokenExchangeSignsVerifiableJWT(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"token_ttl": "2m", "token_issuer": "https://vault.test/v1/apikeys"})
	e.setupClientRole("acme", "internal", "svc", map[string]interface{}{"audiences": "orders-api", "key_lifetime": "90s"})
	key := e.ok(logical.CreateOperation, "keys/acme/main", map[string]interface{}{"role": "svc"}).Data["key"].(string)
	resp := e.ok(logical.UpdateOperation, "token", map[string]interface{}{"key": key, "audience": "orders-api", "scope": "orders:read"})
	tok := resp.Data["token"].(string)
	// key_lifetime (90s) ends before token_ttl (2m): the token ends with the key.
	if exp := resp.Data["expires_at"]; exp != testStart.Add(90*time.Second).UTC().Format(time.RFC3339) {
		t.Fatalf("expires_at = %s", exp)
	}
	c, err := jwtsign.Verify(tok, e.jwks(), jwt.Expected{Issuer: "https://vault.test/v1/apikeys", AnyAudience: jwt.Audience{"orders-api"}, Time: testStart.Add(time.Minute)}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "acme" || c.Scope != "orders:read" || c.ID != resp.Data["jti"] || !c.IssuedAt.Time().Equal(testStart) {
		t.Fatalf("claims = %+v", c)
	}
	head, _ := e.b.log.Head(e.ctx, e.storage)
	rec, _ := e.b.log.Entry(e.ctx, e.storage, head.Seq)
	if ev := decodeEvent(t, rec); ev.Type != eventlog.TokenIssued || ev.Actor.EntityID != "entity-alice" || ev.Details["jti"] != c.ID {
		t.Fatalf("last event = %+v", ev)
	}
	// The key lacks billing-api and orders:delete.
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"key": key, "audience": "billing-api"}, "code=forbidden_audience")
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"key": key, "audience": "orders-api", "scope": "orders:delete"}, "code=forbidden_scope")
	// Once the key expired, no token.
	e.clock.Advance(90 * time.Second)
	e.userErr(logical.UpdateOperation, "token", map[string]interface{}{"key": key, "audience": "orders-api"}, "code=expired")
}
