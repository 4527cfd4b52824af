package backend

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func TestLeakReportRevokesAndAlerts(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	key := e.ok(logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "r"}).Data["key"].(string)
	detected := testStart.Add(-90 * time.Second).Format(time.RFC3339)

	resp := e.ok(logical.UpdateOperation, "leaks", map[string]interface{}{
		"key": key, "reporter": "github-secret-scanning", "source": "https://example.com/repo/commit/1", "detected_at": detected,
	})
	body, _ := json.Marshal(resp.Data)
	if strings.Contains(string(body), key) {
		t.Fatal("leak response echoes the key")
	}
	if resp.Data["status"] != leakRevoked || resp.Data["client"] != "billing" || resp.Data["alert_id"] == "" {
		t.Fatalf("leak response: %v", resp.Data)
	}
	if ttr := resp.Data["time_to_revoke_seconds"].(float64); ttr != 90 {
		t.Fatalf("time_to_revoke_seconds = %v, want 90", ttr)
	}
	k, _ := e.b.getKey(e.ctx, e.storage, "billing", "main")
	if !k.Revoked || !strings.Contains(k.RevokeReason, "github-secret-scanning") {
		t.Fatalf("key not revoked by the leak report: %+v", k)
	}
	revs := e.ok(logical.ReadOperation, "clients/billing/revocations", nil).Data["revocations"].([]map[string]interface{})
	if len(revs) != 1 || !strings.HasPrefix(revs[0]["reason"].(string), "leaked") {
		t.Fatalf("revocation list: %v", revs)
	}
	alerts := e.ok(logical.ReadOperation, "alerts", map[string]interface{}{"type": record.AlertLeakReported}).Data["alerts"].([]map[string]interface{})
	if len(alerts) != 1 || alerts[0]["severity"] != record.SeverityCritical || alerts[0]["details"].(map[string]interface{})["reporter"] != "github-secret-scanning" {
		t.Fatalf("leak alert: %v", alerts)
	}

	// Reporting again is harmless and says so.
	resp = e.ok(logical.UpdateOperation, "leaks", map[string]interface{}{"key": key})
	if resp.Data["status"] != leakAlreadyRevoked {
		t.Fatalf("second report: %v", resp.Data)
	}
	// A well-formed key of nobody, and junk.
	other, err := keyformat.Generate(rand.Reader, "ak", "prod", 256)
	if err != nil {
		t.Fatal(err)
	}
	if resp = e.ok(logical.UpdateOperation, "leaks", map[string]interface{}{"key": other}); resp.Data["status"] != leakUnknown {
		t.Fatalf("unknown key: %v", resp.Data)
	}
	if resp = e.ok(logical.UpdateOperation, "leaks", map[string]interface{}{"key": "not a key at all"}); resp.Data["status"] != leakMalformed {
		t.Fatalf("junk: %v", resp.Data)
	}
	e.userErr(logical.UpdateOperation, "leaks", map[string]interface{}{}, "key is required")
	e.userErr(logical.UpdateOperation, "leaks", map[string]interface{}{"key": other, "detected_at": "yesterday"}, "detected_at")

	// Nothing anywhere holds the plaintext: storage keys, log, alerts.
	for _, sk := range e.storageKeys() {
		if strings.Contains(sk, key) {
			t.Fatal("a storage key contains the plaintext")
		}
		entry, _ := e.storage.Get(e.ctx, sk)
		if sk != keyStorageKey("billing", "main") && strings.Contains(string(entry.Value), key) {
			t.Fatalf("storage entry %s contains the plaintext", sk)
		}
	}

	// Metrics: the leak's time-to-revoke is a sample.
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	ttr := m["time_to_revoke"].(map[string]interface{})
	if ttr["count"] != 1 || ttr["p50_seconds"] != float64(90) {
		t.Fatalf("metrics time_to_revoke = %v", ttr)
	}
}

func TestLeakOfRetiredVersionDoesNotRevokeCurrent(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", map[string]interface{}{"grace_period": "0s"})
	old := e.ok(logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "r"}).Data["key"].(string)
	e.ok(logical.UpdateOperation, "keys/billing/main/rotate", nil)
	resp := e.ok(logical.UpdateOperation, "leaks", map[string]interface{}{"key": old})
	if resp.Data["status"] != leakAlreadyRetired {
		t.Fatalf("retired version report: %v", resp.Data)
	}
	if k, _ := e.b.getKey(e.ctx, e.storage, "billing", "main"); k.Revoked {
		t.Fatal("the current version was revoked for a retired secret")
	}
}
