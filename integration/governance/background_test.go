package governance

import (
	"testing"
	"time"
)

// Vault's periodic function drives governance in the background: a key
// unused for its role's idle_timeout is revoked by "system", without any
// API call touching it. Vault runs the periodic function about once a
// minute, so this polls with a deadline.
func TestIdleKeyRevokedInBackground(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Vault's periodic function (up to ~2.5 minutes)")
	}
	t.Parallel() // overlaps with the package's other waits for a tick
	m := newMount(t)
	setup(t, m, "billing", "r", map[string]interface{}{"idle_timeout": "30s"})
	key := issue(t, m, "billing", "idle", "r")
	deadline := time.Now().Add(150 * time.Second)
	for {
		s := read(t, m+"/keys/billing/idle")
		if s.Data["state"] == "revoked" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("idle key not revoked by the periodic function in time: %v", s.Data)
		}
		time.Sleep(2 * time.Second) // polling a background effect of real Vault
	}
	if active, code := verify(t, m, key, nil); active || code != "revoked" {
		t.Fatalf("verify after idle revocation: active=%v code=%q", active, code)
	}
	revs := read(t, m+"/clients/billing/revocations").Data["revocations"].([]interface{})
	row := revs[0].(map[string]interface{})
	if row["actor"].(map[string]interface{})["type"] != "system" {
		t.Fatalf("idle revocation not attributed to system: %v", row)
	}
}
