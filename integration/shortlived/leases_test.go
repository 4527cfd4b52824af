package shortlived

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// logEvents returns the mount's lifecycle-log entries of type typ.
func logEvents(t *testing.T, m, typ string) []map[string]interface{} {
	t.Helper()
	s, err := client(t).Logical().ReadWithData(m+"/log", map[string][]string{"after": {"0"}, "limit": {"1000"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]interface{}
	for _, e := range s.Data["entries"].([]interface{}) {
		ev := e.(map[string]interface{})
		if ev["type"] == typ {
			out = append(out, ev)
		}
	}
	return out
}

func actorType(ev map[string]interface{}) string {
	a, _ := ev["actor"].(map[string]interface{})
	s, _ := a["type"].(string)
	return s
}

func details(ev map[string]interface{}) map[string]interface{} {
	d, _ := ev["details"].(map[string]interface{})
	return d
}

func TestLeaseRevokeKillsKeyAtOnce(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "external", "partner", map[string]interface{}{"ttl": "1h", "max_ttl": "2h"})
	s := read(t, m+"/creds/acme/partner")
	if s.LeaseID == "" || !strings.HasPrefix(s.LeaseID, m+"/creds/acme/partner/") || s.LeaseDuration != 3600 || !s.Renewable {
		t.Fatalf("lease = %q %d renewable=%v", s.LeaseID, s.LeaseDuration, s.Renewable)
	}
	key, keyID, name := s.Data["key"].(string), s.Data["key_id"].(string), s.Data["name"].(string)
	if aud := s.Data["aud"].([]interface{}); len(aud) != 1 || aud[0] != "orders-api" {
		t.Fatalf("aud = %v", aud)
	}
	if active, code := verify(t, m, key); !active {
		t.Fatalf("fresh leased key inactive: %s", code)
	}
	// The leased key is in the inventory, never retrievable.
	inv := read(t, m+"/inventory")
	found := false
	for _, it := range inv.Data["keys"].([]interface{}) {
		item := it.(map[string]interface{})
		if item["key_id"] == keyID {
			found = item["leased"] == true
		}
	}
	if !found {
		t.Fatalf("leased key %s not in the inventory as leased: %v", keyID, inv.Data["keys"])
	}
	if rec := read(t, m+"/keys/acme/"+name); rec.Data["key"] != nil || rec.Data["leased"] != true {
		t.Fatalf("leased key record: %v", rec.Data)
	}

	// sys/leases/revoke is synchronous: the key fails verify right after.
	if err := client(t).Sys().Revoke(s.LeaseID); err != nil {
		t.Fatal(err)
	}
	if active, code := verify(t, m, key); active || code != "revoked" {
		t.Fatalf("after lease revoke: active=%v code=%q", active, code)
	}
	evs := logEvents(t, m, "key.revoked")
	if len(evs) != 1 || evs[0]["key_id"] != keyID || actorType(evs[0]) != "system" || details(evs[0])["reason"] != "lease revoked" {
		t.Fatalf("revocation events = %v", evs)
	}
}

func TestLeaseRevokePrefix(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "external", "partner", map[string]interface{}{"ttl": "1h"})
	var keys []string
	for i := 0; i < 3; i++ {
		keys = append(keys, read(t, m+"/creds/acme/partner").Data["key"].(string))
	}
	if err := client(t).Sys().RevokePrefix(m + "/creds/acme/"); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if active, code := verify(t, m, k); active || code != "revoked" {
			t.Fatalf("key %d after revoke-prefix: active=%v code=%q", i, active, code)
		}
	}
}

func TestParentTokenRevocationKillsKey(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "external", "partner", map[string]interface{}{"ttl": "1h"})
	if err := client(t).Sys().PutPolicy("creds-"+m, `path "`+m+`/creds/acme/partner" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := client(t).Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"creds-" + m}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tokenClient(t, tok.Auth.ClientToken).Logical().Read(m + "/creds/acme/partner")
	if err != nil {
		t.Fatal(err)
	}
	key := s.Data["key"].(string)
	if active, _ := verify(t, m, key); !active {
		t.Fatal("fresh leased key inactive")
	}
	if err := client(t).Auth().Token().RevokeTree(tok.Auth.ClientToken); err != nil {
		t.Fatal(err)
	}
	// Vault revokes a token's leases through its expiration manager, right
	// after the token itself.
	waitFor(t, "the leased key of a revoked token to fail verify", 30*time.Second, func() bool {
		active, code := verify(t, m, key)
		return !active && code == "revoked"
	})
	if evs := logEvents(t, m, "key.revoked"); len(evs) != 1 || actorType(evs[0]) != "system" {
		t.Fatalf("revocation events = %v", evs)
	}
}

func TestLeaseExpiryRevokesAsSystem(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "external", "partner", map[string]interface{}{"ttl": "2s", "max_ttl": "1h"})
	s := read(t, m+"/creds/acme/partner")
	key := s.Data["key"].(string)
	waitFor(t, "the lease to expire and its key to be revoked", 30*time.Second, func() bool {
		return len(logEvents(t, m, "key.revoked")) == 1
	})
	ev := logEvents(t, m, "key.revoked")[0]
	if actorType(ev) != "system" || details(ev)["reason"] != "lease expired" {
		t.Fatalf("expiry event = %v", ev)
	}
	if active, code := verify(t, m, key); active || (code != "revoked" && code != "expired") {
		t.Fatalf("expired leased key: active=%v code=%q", active, code)
	}
}

func TestLeaseRenewCappedAtMaxTTL(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "external", "partner", map[string]interface{}{"ttl": "60s", "max_ttl": "120s"})
	s := read(t, m+"/creds/acme/partner")
	name := s.Data["name"].(string)
	r, err := client(t).Sys().Renew(s.LeaseID, 3600)
	if err != nil {
		t.Fatal(err)
	}
	if r.LeaseDuration > 120 || r.LeaseDuration < 100 || len(r.Warnings) == 0 {
		t.Fatalf("renew beyond max_ttl: ttl=%d warnings=%v", r.LeaseDuration, r.Warnings)
	}
	// The key's own expiry follows the lease, so it never outlives it.
	rec := read(t, m+"/keys/acme/"+name)
	exp, err := time.Parse(time.RFC3339, rec.Data["expires_at"].(string))
	if err != nil {
		t.Fatalf("expires_at = %v", rec.Data["expires_at"])
	}
	issued, _ := time.Parse(time.RFC3339, rec.Data["created_at"].(string))
	if d := exp.Sub(issued); d > 121*time.Second || d < 100*time.Second {
		t.Fatalf("key expiry %s after issue, want about max_ttl", d)
	}
	// A plain renewal keeps the cap.
	r, err = client(t).Sys().Renew(s.LeaseID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.LeaseDuration > 120 {
		t.Fatalf("renewal went past max_ttl: %d", r.LeaseDuration)
	}
}

func TestCredsRefusals(t *testing.T) {
	m := newMount(t)
	setup(t, m, "acme", "external", "internal-only", map[string]interface{}{"allowed_client_types": "internal"})
	write(t, m+"/roles/office", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "issue_bound_cidrs": "10.0.0.0/8"})
	write(t, m+"/roles/approved", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "requires_approval": true})
	cases := []struct{ path, want string }{
		{m + "/creds/acme/internal-only", "only to internal clients"},
		{m + "/creds/acme/office", "allows issuance only from 10.0.0.0/8"},
		{m + "/creds/acme/approved", "approved request"},
		{m + "/creds/ghost/office", "does not exist"},
	}
	for _, tc := range cases {
		_, err := client(t).Logical().Read(tc.path)
		expectStatus(t, err, 400, tc.want)
	}
	leases, err := client(t).Logical().List("sys/leases/lookup/" + m + "/creds/acme/")
	if err != nil {
		t.Fatal(err)
	}
	if leases != nil && len(leases.Data["keys"].([]interface{})) > 0 {
		t.Fatalf("refused requests left leases: %v", leases.Data)
	}
}
