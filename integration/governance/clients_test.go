package governance

import (
	"net/http"
	"testing"
)

func issue(t *testing.T, m, c, name, role string) string {
	t.Helper()
	s := write(t, m+"/keys/"+c+"/"+name, map[string]interface{}{"role": role})
	return s.Data["key"].(string)
}

// Lock-down suspends every key of the client at once and unlock restores
// them; verify says "locked" meanwhile.
func TestLockUnlock(t *testing.T) {
	m := newMount(t)
	setup(t, m, "billing", "r", nil)
	k1, k2 := issue(t, m, "billing", "a", "r"), issue(t, m, "billing", "b", "r")

	s := write(t, m+"/clients/billing/lock", map[string]interface{}{"reason": "INC-7"})
	if s.Data["status"] != "locked" {
		t.Fatalf("lock: %v", s.Data)
	}
	for _, k := range []string{k1, k2} {
		if active, code := verify(t, m, k, nil); active || code != "locked" {
			t.Fatalf("verify while locked: active=%v code=%q", active, code)
		}
	}
	_, err := client(t).Logical().Write(m+"/keys/billing/c", map[string]interface{}{"role": "r"})
	expectStatus(t, err, http.StatusBadRequest, "locked")

	s = write(t, m+"/clients/billing/unlock", nil)
	if s.Data["status"] != "active" {
		t.Fatalf("unlock: %v", s.Data)
	}
	for _, k := range []string{k1, k2} {
		if active, code := verify(t, m, k, nil); !active {
			t.Fatalf("verify after unlock: %q", code)
		}
	}
	types := logTypes(t, m)
	if !types["client.locked"] || !types["client.unlocked"] {
		t.Fatalf("log lacks lock/unlock: %v", types)
	}
	_, err = client(t).Logical().Write(m+"/clients/nobody/lock", nil)
	expectStatus(t, err, http.StatusBadRequest, "does not exist")
}

// De-provisioning kills every key of the client, managed and leased, at
// once; the revocation list and the inventory's tombstone show it.
func TestDeprovisionKillsEveryKeyAndLease(t *testing.T) {
	m := newMount(t)
	setup(t, m, "billing", "r", map[string]interface{}{"ttl": "1h", "max_ttl": "2h"})
	keys := []string{issue(t, m, "billing", "a", "r"), issue(t, m, "billing", "b", "r")}
	write(t, m+"/keys/billing/a/rotate", nil) // a/1 stays accepted in its grace period

	leased, err := client(t).Logical().Read(m + "/creds/billing/r")
	if err != nil {
		t.Fatalf("leased key: %v", err)
	}
	if leased == nil || leased.LeaseID == "" {
		t.Fatalf("creds returned no lease: %#v", leased)
	}
	keys = append(keys, leased.Data["key"].(string))
	for _, k := range keys {
		if active, code := verify(t, m, k, nil); !active {
			t.Fatalf("before de-provisioning: %q", code)
		}
	}

	if _, err := client(t).Logical().Delete(m + "/clients/billing"); err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		if active, code := verify(t, m, k, nil); active || code != "revoked" {
			t.Fatalf("key %d after de-provisioning: active=%v code=%q", i, active, code)
		}
	}
	revs := read(t, m+"/clients/billing/revocations")
	list := revs.Data["revocations"].([]interface{})
	ids := revs.Data["revoked_key_ids"].([]interface{})
	if len(ids) != 3 || revs.Data["deprovisioned_at"] == nil {
		t.Fatalf("revocation list: %v", revs.Data)
	}
	for _, r := range list {
		row := r.(map[string]interface{})
		if row["reason"] != "client de-provisioned" || row["actor"].(map[string]interface{})["type"] == "" {
			t.Fatalf("revocation row: %v", row)
		}
	}
	inv := read(t, m+"/inventory")
	if ts := inv.Data["tombstones"].([]interface{}); len(ts) != 1 || ts[0].(map[string]interface{})["deprovisioned_by"] == nil {
		t.Fatalf("tombstone: %v", inv.Data["tombstones"])
	}
	// The lease's key is dead; renewing or revoking the lease is harmless.
	if err := client(t).Sys().Revoke(leased.LeaseID); err != nil {
		t.Fatalf("revoking the dead lease: %v", err)
	}
}
