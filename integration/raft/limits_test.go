package raft

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// On Raft, where Vault refuses a storage entry above 1 MiB, a field of
// about 1.2 MB is a 400 naming the field and its limit, never a 500 from
// storage halfway through a change; nothing is stored, and alerts stay
// readable.
func TestOversizedFieldsAre400OnRaft(t *testing.T) {
	m := vaulttest.NewMount(t)
	c := vaulttest.Client(t)
	vaulttest.Write(t, m+"/clients/billing", map[string]interface{}{"owner": "team-pay", "type": "internal", "description": "kept"})
	vaulttest.Write(t, m+"/roles/orders", map[string]interface{}{"scopes": "orders:read", "environment": "prod", "audiences": "orders-api"})
	key := vaulttest.Write(t, m+"/keys/billing/checkout", map[string]interface{}{"role": "orders"}).Data["key"].(string)

	big := strings.Repeat("x", 1200*1024)
	cases := []struct {
		path, field string
		data        map[string]interface{}
	}{
		{"clients/billing", "description", map[string]interface{}{"description": big}},
		{"clients/billing", "contact", map[string]interface{}{"contact": big}},
		{"clients/billing", "metadata", map[string]interface{}{"metadata": map[string]interface{}{"team": big}}},
		{"roles/orders", "description", map[string]interface{}{"description": big}},
		{"keys/billing/other", "purpose", map[string]interface{}{"role": "orders", "purpose": big}},
		{"keys/billing/checkout/revoke", "reason", map[string]interface{}{"reason": big}},
		{"leaks", "source", map[string]interface{}{"key": key, "reporter": "scanner", "source": big}},
		{"verify", "audience", map[string]interface{}{"key": key, "audience": big}},
		{"clients/billing/lock", "reason", map[string]interface{}{"reason": big}},
	}
	for _, tc := range cases {
		_, err := c.Logical().Write(m+"/"+tc.path, tc.data)
		re, ok := err.(*api.ResponseError)
		if !ok || re.StatusCode != http.StatusBadRequest {
			t.Fatalf("write %s with a 1.2 MB %s: %v, want a 400", tc.path, tc.field, err)
		}
		if msg := strings.Join(re.Errors, " "); !strings.Contains(msg, tc.field+": ") || !strings.Contains(msg, "at most") {
			t.Fatalf("write %s with a 1.2 MB %s: error %.200q does not name the field and its limit", tc.path, tc.field, msg)
		}
	}

	// Nothing was changed: the key still verifies, the client is unlocked
	// and keeps its description, no other key was issued.
	if d := vaulttest.Read(t, m+"/clients/billing").Data; d["description"] != "kept" {
		t.Fatalf("client after refused writes = %v", d)
	}
	if v := vaulttest.Write(t, m+"/verify", map[string]interface{}{"key": key, "audience": "orders-api"}).Data; v["active"] != true {
		t.Fatalf("key after refused writes: %v", v)
	}
	if s, err := c.Logical().Read(m + "/keys/billing/other"); err == nil && s != nil {
		t.Fatalf("a refused issuance stored a key: %v", s.Data)
	}
	// A value at its limit is stored fine on Raft.
	desc := strings.Repeat("é", 1024)
	vaulttest.Write(t, m+"/clients/billing", map[string]interface{}{"description": desc})
	if d := vaulttest.Read(t, m+"/clients/billing").Data["description"]; d != desc {
		t.Fatalf("description at the limit not stored")
	}
	// Alerts stay readable, again and again.
	for i := 0; i < 3; i++ {
		vaulttest.Read(t, m+"/alerts")
	}
}
