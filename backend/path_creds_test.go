package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// credsRead reads creds/<client>/<role> and returns the response.
func (e *testEnv) credsRead(client, role string, data map[string]interface{}) *logical.Response {
	e.t.Helper()
	return e.ok(logical.ReadOperation, "creds/"+client+"/"+role, data)
}

// leaseRequest builds the renew/revoke request Vault sends for a lease.
func (e *testEnv) leaseRequest(op logical.Operation, resp *logical.Response, issued time.Time, increment time.Duration) *logical.Request {
	sec := *resp.Secret
	sec.IssueTime = issued
	sec.Increment = increment
	// Internal data comes back from Vault JSON-decoded.
	sec.InternalData = map[string]interface{}{}
	for k, v := range resp.Secret.InternalData {
		if n, ok := v.(int64); ok {
			sec.InternalData[k] = float64(n)
			continue
		}
		sec.InternalData[k] = v
	}
	return &logical.Request{Operation: op, Path: "creds/x", Storage: e.storage, Secret: &sec}
}

func TestCredsIssuesLeasedKeyStoredHashedOnly(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "external", "partner", map[string]interface{}{"ttl": "1h", "max_ttl": "4h", "audiences": "orders-api"})
	resp := e.credsRead("acme", "partner", nil)
	if resp.Secret == nil || resp.Secret.TTL != time.Hour || resp.Secret.MaxTTL != 4*time.Hour || !resp.Secret.Renewable {
		t.Fatalf("lease = %+v", resp.Secret)
	}
	key := resp.Data["key"].(string)
	name := resp.Data["name"].(string)
	if !strings.HasPrefix(key, "ak_prod_") || !strings.HasPrefix(name, leasedKeyNamePrefix) {
		t.Fatalf("key/name = %q %q", key, name)
	}
	if aud := resp.Data["aud"].([]string); len(aud) != 1 || aud[0] != "orders-api" {
		t.Fatalf("aud = %v", aud)
	}
	k, err := e.b.getKey(e.ctx, e.storage, "acme", name)
	if err != nil || k == nil {
		t.Fatalf("key record: %v %v", k, err)
	}
	if !k.Leased || k.Retrievable || k.Versions[0].Secret != "" || !k.ExpiresAt.Equal(testStart.Add(time.Hour)) {
		t.Fatalf("leased key record = %+v", k)
	}
	if k.KeyID != resp.Data["key_id"] || k.IssuedBy.EntityID != "entity-alice" {
		t.Fatalf("key_id/issuer = %v %+v", k.KeyID, k.IssuedBy)
	}
	for _, sk := range e.storageKeys() {
		if strings.Contains(sk, key) {
			t.Fatalf("plaintext in storage key %q", sk)
		}
	}
	for _, p := range []string{keyStorageKey("acme", name), indexStorageKey(k.Versions[0].HMAC)} {
		entry, _ := e.storage.Get(e.ctx, p)
		if entry == nil || strings.Contains(string(entry.Value), key) {
			t.Fatalf("%s missing or holds the plaintext", p)
		}
	}
	// Narrowed scopes.
	resp = e.credsRead("acme", "partner", map[string]interface{}{"scopes": "orders:read"})
	if s := resp.Data["scopes"].([]string); len(s) != 1 || s[0] != "orders:read" {
		t.Fatalf("scopes = %v", s)
	}
}

func TestCredsRefusals(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "external", "internal-only", map[string]interface{}{"allowed_client_types": "internal"})
	e.ok(logical.CreateOperation, "roles/approved", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "requires_approval": true})
	e.ok(logical.CreateOperation, "roles/office", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "issue_bound_cidrs": "10.0.0.0/8"})
	e.ok(logical.CreateOperation, "roles/open", map[string]interface{}{"scopes": "orders:read", "environment": "prod"})
	e.ok(logical.CreateOperation, "clients/locked", map[string]interface{}{"owner": "t", "type": "external"})
	c, _ := e.b.getClient(e.ctx, e.storage, "locked")
	c.Status = record.ClientLocked
	if err := e.b.putClient(e.ctx, e.storage, c); err != nil {
		t.Fatal(err)
	}
	before := len(e.storageKeys())
	cases := []struct {
		path string
		data map[string]interface{}
		want string
	}{
		{"creds/nobody/open", nil, "does not exist"},
		{"creds/acme/nope", nil, "role \"nope\" does not exist"},
		{"creds/acme/internal-only", nil, "only to internal clients"},
		{"creds/acme/approved", nil, "use keys/acme/<name> with an approved request"},
		{"creds/acme/office", nil, "allows issuance only from 10.0.0.0/8"},
		{"creds/acme/open", map[string]interface{}{"scopes": "orders:write"}, "not allowed by role"},
		{"creds/acme/open", map[string]interface{}{"scopes": "BAD SCOPE"}, "scopes"},
		{"creds/locked/open", nil, "client \"locked\" is locked"},
	}
	for _, tc := range cases {
		e.userErr(logical.ReadOperation, tc.path, tc.data, tc.want)
	}
	for _, k := range e.storageKeys() {
		if strings.HasPrefix(k, storageKeyPrefix) || strings.HasPrefix(k, storageIndexPrefix) {
			t.Fatalf("a refused request stored %q (storage keys before: %d)", k, before)
		}
	}
}

func TestLeaseRenewCappedAtMaxTTL(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "external", "partner", map[string]interface{}{"ttl": "1h", "max_ttl": "3h"})
	resp := e.credsRead("acme", "partner", nil)
	name := resp.Data["name"].(string)

	e.clock.Advance(50 * time.Minute)
	r, err := e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RenewOperation, resp, testStart, 0))
	if err != nil || r.IsError() || r.Secret.TTL != time.Hour {
		t.Fatalf("renew: %+v %v", r, err)
	}
	k, _ := e.b.getKey(e.ctx, e.storage, "acme", name)
	if !k.ExpiresAt.Equal(testStart.Add(110 * time.Minute)) {
		t.Fatalf("expires_at after renew = %s", k.ExpiresAt)
	}
	// An increment beyond max_ttl is capped at issue time + max_ttl.
	e.clock.Advance(100 * time.Minute) // 2h30m after issue
	r, err = e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RenewOperation, resp, testStart, 5*time.Hour))
	if err != nil || r.IsError() || r.Secret.TTL != 30*time.Minute || len(r.Warnings) == 0 {
		t.Fatalf("capped renew: %+v %v", r, err)
	}
	k, _ = e.b.getKey(e.ctx, e.storage, "acme", name)
	if !k.ExpiresAt.Equal(testStart.Add(3 * time.Hour)) {
		t.Fatalf("expires_at after capped renew = %s", k.ExpiresAt)
	}
	// At max_ttl a renewal is refused.
	e.clock.Advance(30 * time.Minute)
	r, err = e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RenewOperation, resp, testStart, 0))
	if err != nil || r == nil || !r.IsError() || !strings.Contains(r.Error().Error(), "max_ttl") {
		t.Fatalf("renew past max: %+v %v", r, err)
	}
}

func TestLeaseRevokeRevokesKeyAsSystem(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("acme", "external", "partner", map[string]interface{}{"ttl": "1h", "max_ttl": "3h"})
	for _, tc := range []struct {
		after  time.Duration
		reason string
	}{{10 * time.Minute, "lease revoked"}, {time.Hour, "lease expired"}} {
		resp := e.credsRead("acme", "partner", nil)
		name := resp.Data["name"].(string)
		e.clock.Advance(tc.after)
		r, err := e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RevokeOperation, resp, e.clock.Now().Add(-tc.after), 0))
		if err != nil || (r != nil && r.IsError()) {
			t.Fatalf("revoke: %+v %v", r, err)
		}
		k, _ := e.b.getKey(e.ctx, e.storage, "acme", name)
		if !k.Revoked || k.RevokeReason != tc.reason || k.Versions[0].State != record.StateRevoked || k.Versions[0].RevokedBy.Type != actorSystem {
			t.Fatalf("after revoke: %+v %+v", k, k.Versions[0])
		}
		// Revoking again (Vault retries) is a no-op.
		if _, err := e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RevokeOperation, resp, testStart, 0)); err != nil {
			t.Fatal(err)
		}
		// A revoked key's lease cannot be renewed.
		r, _ = e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RenewOperation, resp, testStart, 0))
		if r == nil || !r.IsError() {
			t.Fatalf("renewed a revoked key: %+v", r)
		}
	}
	var revokes []eventlog.Event
	head, _ := e.b.log.Head(e.ctx, e.storage)
	for seq := uint64(1); seq <= head.Seq; seq++ {
		rec, _ := e.b.log.Entry(e.ctx, e.storage, seq)
		ev := decodeEvent(t, rec)
		if ev.Type == eventlog.KeyRevoked {
			revokes = append(revokes, ev)
		}
	}
	if len(revokes) != 2 || revokes[0].Actor.Type != actorSystem || revokes[1].Details["reason"] != "lease expired" {
		t.Fatalf("revocation events = %+v", revokes)
	}
}
