package backend

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestClientLockUnlock(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	e.ok(logical.CreateOperation, "keys/billing/main", map[string]interface{}{"role": "r"})

	resp := e.ok(logical.UpdateOperation, "clients/billing/lock", map[string]interface{}{"reason": "INC-42"})
	if resp.Data["status"] != record.ClientLocked || resp.Data["status_reason"] != "INC-42" {
		t.Fatalf("lock: %v", resp.Data)
	}
	// Locked: issuance refused, inventory says locked, nothing revoked.
	e.userErr(logical.CreateOperation, "keys/billing/other", map[string]interface{}{"role": "r"}, "locked")
	inv := e.ok(logical.ReadOperation, "inventory", nil)
	if st := inv.Data["keys"].([]map[string]interface{})[0]["state"]; st != record.StateLocked {
		t.Fatalf("inventory state while locked = %v", st)
	}
	// Locking again is a no-op with a warning and no extra log entry.
	n := len(e.logTypes())
	resp = e.ok(logical.UpdateOperation, "clients/billing/lock", nil)
	if len(resp.Warnings) == 0 || len(e.logTypes()) != n {
		t.Fatalf("repeated lock: warnings %v, log grew from %d", resp.Warnings, n)
	}

	resp = e.ok(logical.UpdateOperation, "clients/billing/unlock", nil)
	if resp.Data["status"] != record.ClientActive {
		t.Fatalf("unlock: %v", resp.Data)
	}
	inv = e.ok(logical.ReadOperation, "inventory", nil)
	if st := inv.Data["keys"].([]map[string]interface{})[0]["state"]; st != record.StateActive {
		t.Fatalf("inventory state after unlock = %v", st)
	}
	types := e.logTypes()
	if !slices.Contains(types, eventlog.ClientLocked) || !slices.Contains(types, eventlog.ClientUnlocked) {
		t.Fatalf("log lacks lock/unlock: %v", types)
	}

	e.userErr(logical.UpdateOperation, "clients/nobody/lock", nil, "does not exist")
	e.ok(logical.DeleteOperation, "clients/billing", nil)
	e.userErr(logical.UpdateOperation, "clients/billing/unlock", nil, "de-provisioned")
	e.userErr(logical.UpdateOperation, "clients/billing/lock", nil, "de-provisioned")
}

// Concurrent locks of one client change it and log it once: the "already
// locked" check runs under the client lock, not before it.
func TestClientConcurrentLocksLogOnce(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	const callers = 8
	var wg sync.WaitGroup
	warned := make(chan bool, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := e.doErr(logical.UpdateOperation, "clients/billing/lock", map[string]interface{}{"reason": "INC-7"})
			if err != nil || resp == nil || resp.IsError() {
				t.Errorf("lock: %v %v", resp, err)
				return
			}
			warned <- len(resp.Warnings) > 0
		}()
	}
	wg.Wait()
	close(warned)
	fresh := 0
	for w := range warned {
		if !w {
			fresh++
		}
	}
	locks := 0
	for _, typ := range e.logTypes() {
		if typ == eventlog.ClientLocked {
			locks++
		}
	}
	if fresh != 1 || locks != 1 {
		t.Fatalf("%d callers saw a fresh lock and the log has %d client.locked events; want 1 and 1", fresh, locks)
	}
}

func TestClientRevocationList(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	e.ok(logical.CreateOperation, "keys/billing/a", map[string]interface{}{"role": "r"})
	e.ok(logical.CreateOperation, "keys/billing/b", map[string]interface{}{"role": "r"})
	e.ok(logical.UpdateOperation, "keys/billing/a/rotate", nil)
	e.ok(logical.UpdateOperation, "keys/billing/a/revoke", map[string]interface{}{"version": 1, "reason": "suspected exposure"})

	resp := e.ok(logical.ReadOperation, "clients/billing/revocations", nil)
	list := resp.Data["revocations"].([]map[string]interface{})
	if len(list) != 1 || list[0]["version"] != 1 || list[0]["reason"] != "suspected exposure" || list[0]["actor"].(*record.Actor).EntityID != "entity-alice" {
		t.Fatalf("revocations after one version revoked: %v", list)
	}

	e.clock.Advance(1)
	e.ok(logical.DeleteOperation, "clients/billing", nil)
	resp = e.ok(logical.ReadOperation, "clients/billing/revocations", nil)
	list = resp.Data["revocations"].([]map[string]interface{})
	// a/1 (earlier), then a/2 and b/1 by de-provisioning.
	if len(list) != 3 || resp.Data["deprovisioned_at"] == nil {
		t.Fatalf("revocations after de-provisioning: %v", resp.Data)
	}
	for _, r := range list[1:] {
		if r["reason"] != "client de-provisioned" || r["whole_key"] != true {
			t.Fatalf("de-provisioning revocation: %v", r)
		}
	}
	if ids := resp.Data["revoked_key_ids"].([]string); len(ids) != 2 {
		t.Fatalf("revoked_key_ids = %v", ids)
	}
	e.userErr(logical.ReadOperation, "clients/nobody/revocations", nil, "does not exist")
}

// Trimming old versions off a key record (record.MaxKeptVersions) never loses a
// revocation from the client's revocation list.
func TestRevocationListSurvivesVersionTrimming(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"grace_period": "1h"})
	e.issue("svc", "k", "r", nil)
	// Each round: rotate, then revoke the version just made previous.
	const rounds = 2 * record.MaxKeptVersions
	for v := 1; v <= rounds; v++ {
		e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
		e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"version": v, "reason": fmt.Sprintf("leaked v%d", v)})
	}
	if n := len(e.issued("svc", "k").Versions); n > record.MaxKeptVersions {
		t.Fatalf("key record holds %d versions, bound %d", n, record.MaxKeptVersions)
	}
	list := e.ok(logical.ReadOperation, "clients/svc/revocations", nil).Data["revocations"].([]map[string]interface{})
	if len(list) != rounds {
		t.Fatalf("revocation list has %d entries after %d revocations", len(list), rounds)
	}
	for i, r := range list {
		if r["version"] != i+1 || r["reason"] != fmt.Sprintf("leaked v%d", i+1) {
			t.Fatalf("entry %d = %v", i, r)
		}
	}
}
