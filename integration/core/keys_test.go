package core

import (
	"context"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/vaulttest"
)

// storageSnapshot lists every storage key of a mount through sys/raw.
func storageSnapshot(t *testing.T, mount string) []string {
	t.Helper()
	var out []string
	var walk func(prefix string)
	walk = func(prefix string) {
		for _, k := range vaulttest.RawList(t, mount, prefix) {
			if strings.HasSuffix(k, "/") {
				walk(prefix + k)
				continue
			}
			out = append(out, prefix+k)
		}
	}
	walk("")
	sort.Strings(out)
	return out
}

func setup(t *testing.T, m string) {
	t.Helper()
	write(t, m+"/clients/svc", map[string]interface{}{"owner": "team-svc", "type": "internal"})
	write(t, m+"/clients/partner", map[string]interface{}{"owner": "team-bd", "type": "external"})
	write(t, m+"/roles/orders", map[string]interface{}{
		"scopes": "orders:read,orders:write", "audiences": "orders-api", "environment": "prod",
		"grace_period": "1h", "max_keys_per_client": 2,
	})
	write(t, m+"/roles/internal-only", map[string]interface{}{
		"scopes": "admin:*", "environment": "prod", "allowed_client_types": "internal",
	})
}

func TestKeyIssueReadRotateRevoke(t *testing.T) {
	m := newMount(t)
	setup(t, m)
	issued := write(t, m+"/keys/svc/main", map[string]interface{}{"role": "orders", "scopes": "orders:read", "purpose": "checkout"})
	key := issued.Data["key"].(string)
	if !strings.HasPrefix(key, "ak_prod_") || issued.Data["state"] != "active" || num(t, issued.Data["version"]) != 1 {
		t.Fatalf("issue response: %v", issued.Data)
	}
	got := read(t, m+"/keys/svc/main")
	if got.Data["key"] != key || got.Data["key_id"] != issued.Data["key_id"] || got.Data["owner"] != "team-svc" {
		t.Fatalf("read: %v", got.Data)
	}
	if num(t, got.Data["ttl"]) <= 0 || num(t, got.Data["rotation_period"]) != 90*24*3600 {
		t.Fatalf("Agent contract fields: ttl=%v rotation_period=%v", got.Data["ttl"], got.Data["rotation_period"])
	}
	rot := write(t, m+"/keys/svc/main/rotate", nil)
	if rot.Data["key"] == key || num(t, rot.Data["version"]) != 2 {
		t.Fatalf("rotate: %v", rot.Data)
	}
	list, err := client(t).Logical().List(m + "/keys/svc")
	if err != nil || list == nil || !reflect.DeepEqual(list.Data["keys"], []interface{}{"main"}) {
		t.Fatalf("list: %v %v", list, err)
	}
	rev := write(t, m+"/keys/svc/main/revoke", map[string]interface{}{"reason": "test"})
	if rev.Data["state"] != "revoked" {
		t.Fatalf("revoke: %v", rev.Data)
	}
	inv := read(t, m+"/inventory")
	if num(t, inv.Data["count"]) != 1 {
		t.Fatalf("inventory: %v", inv.Data)
	}
	v := read(t, m+"/log/verify")
	if v.Data["valid"] != true {
		t.Fatalf("log/verify: %v", v.Data)
	}
}

func TestBadInputsAre400AndStoreNothing(t *testing.T) {
	m := newMount(t)
	setup(t, m)
	write(t, m+"/keys/svc/one", map[string]interface{}{"role": "orders"})
	write(t, m+"/keys/svc/two", map[string]interface{}{"role": "orders"})
	before := storageSnapshot(t, m)
	cases := []struct {
		name, path string
		data       map[string]interface{}
		want       string
	}{
		{"client without owner", "/clients/x", map[string]interface{}{"type": "internal"}, "owner is required"},
		{"bad client name", "/clients/bad%20name", map[string]interface{}{"owner": "o"}, "client name"},
		{"role without scopes", "/roles/x", map[string]interface{}{"environment": "prod"}, "scopes is required"},
		{"unknown role", "/keys/svc/k", map[string]interface{}{"role": "nope"}, "does not exist"},
		{"scopes outside role", "/keys/svc/k", map[string]interface{}{"role": "orders", "scopes": "billing:read"}, "billing:read"},
		{"bad key name", "/keys/svc/bad%21name", map[string]interface{}{"role": "orders"}, "key name"},
		{"wrong client type", "/keys/partner/k", map[string]interface{}{"role": "internal-only"}, "only to internal"},
		{"over max_keys_per_client", "/keys/svc/three", map[string]interface{}{"role": "orders"}, "max_keys_per_client"},
		{"bad entropy", "/config", map[string]interface{}{"entropy_bits": 64}, "entropy_bits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client(t).Logical().Write(m+tc.path, tc.data)
			expectStatus(t, err, 400, tc.want)
		})
	}
	after := storageSnapshot(t, m)
	// Rejected requests append nothing and write nothing.
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("storage changed by rejected requests:\nbefore %v\nafter  %v", before, after)
	}
}

func TestNoPlaintextInServerOrAuditLog(t *testing.T) {
	m := newMount(t)
	setup(t, m)
	issued := write(t, m+"/keys/svc/secretive", map[string]interface{}{"role": "orders"})
	key := issued.Data["key"].(string)
	keyID := issued.Data["key_id"].(string)
	rot := write(t, m+"/keys/svc/secretive/rotate", nil)
	key2 := rot.Data["key"].(string)
	read(t, m+"/keys/svc/secretive")
	write(t, m+"/keys/svc/secretive/revoke", nil)

	audit, err := os.ReadFile(vaulttest.Shared.AuditPath)
	if err != nil {
		t.Fatal(err)
	}
	serverLog, err := os.ReadFile(vaulttest.Shared.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{key, key2, key[8:30], key2[8:30]} {
		if strings.Contains(string(audit), secret) {
			t.Fatal("key plaintext found in the audit log")
		}
		if strings.Contains(string(serverLog), secret) {
			t.Fatal("key plaintext found in the server log")
		}
	}
	// Non-secret identifiers stay readable thanks to the mount's tuning.
	for _, id := range []string{`"key_id":"` + keyID + `"`, `"client":"svc"`, `"role":"orders"`} {
		if !strings.Contains(string(audit), id) {
			t.Fatalf("audit log lacks readable %s", id)
		}
	}
}

func TestLogTamperingDetectedThroughRawStorage(t *testing.T) {
	m := newMount(t)
	setup(t, m)
	write(t, m+"/keys/svc/k", map[string]interface{}{"role": "orders"})
	v := read(t, m+"/log/verify")
	if v.Data["valid"] != true {
		t.Fatalf("fresh log invalid: %v", v.Data)
	}
	entries := vaulttest.RawList(t, m, "log/entries/")
	if len(entries) < 3 {
		t.Fatalf("expected log entries, got %v", entries)
	}
	// Tamper with the entry that recorded the partner's owner.
	var path, value string
	broken := 0
	for i, e := range entries {
		p := vaulttest.RawPath(t, m, "log/entries/"+e)
		raw, err := client(t).Logical().Read(p)
		if err != nil {
			t.Fatal(err)
		}
		if v := raw.Data["value"].(string); strings.Contains(v, `"owner":"team-bd"`) {
			path, value, broken = p, v, i+1
			break
		}
	}
	if path == "" {
		t.Fatalf("no log entry records the owner team-bd among %v", entries)
	}
	tampered := strings.Replace(value, `team-bd`, `team-xx`, 1)
	if _, err := client(t).Logical().Write(path, map[string]interface{}{"value": tampered}); err != nil {
		t.Fatal(err)
	}
	v = read(t, m+"/log/verify")
	if v.Data["valid"] != false || num(t, v.Data["broken_at"]) != int64(broken) {
		t.Fatalf("tampering not reported: %v", v.Data)
	}
}

func TestPathHelpDocumentsFields(t *testing.T) {
	for path, fields := range map[string][]string{
		"apikeys/config":          {"key_prefix", "entropy_bits", "risk_tiers", "default_grace_period"},
		"apikeys/clients/x":       {"owner", "type", "bound_cidrs", "allowed_environments"},
		"apikeys/roles/x":         {"scopes", "rotation_period", "rotation_schedule", "grace_period", "max_keys_per_client", "retrievable"},
		"apikeys/keys/c/n":        {"role", "scopes", "purpose", "approval_id"},
		"apikeys/keys/c/n/rotate": {"stage", "approval_id"},
		"apikeys/keys/c/n/revoke": {"version", "reason"},
		"apikeys/inventory":       {"unused_for", "expiring_within"},
	} {
		r := client(t).NewRequest("GET", "/v1/"+path)
		r.Params.Set("help", "1")
		resp, err := client(t).RawRequestWithContext(context.Background(), r)
		if err != nil {
			t.Fatalf("help %s: %v", path, err)
		}
		var body map[string]interface{}
		if err := resp.DecodeJSON(&body); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		help, _ := body["help"].(string)
		for _, f := range fields {
			if !strings.Contains(help, f) {
				t.Errorf("path-help %s does not document %s", path, f)
			}
		}
	}
}
