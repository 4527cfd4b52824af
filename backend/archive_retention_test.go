package backend

import (
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// archivedExists reports whether the archived record of keyID is stored.
func (e *testEnv) archivedExists(keyID string) bool {
	e.t.Helper()
	k, err := e.b.getArchivedKey(e.ctx, e.storage, keyID)
	if err != nil {
		e.t.Fatal(err)
	}
	return k != nil
}

// reissued revokes svc/<name> and issues it again, returning the old
// secret and key id and the new secret.
func (e *testEnv) reissued(name string) (oldKey, oldID, newKey string) {
	e.t.Helper()
	oldKey = e.issue("svc", name, "r", nil)
	oldID = e.ok(logical.ReadOperation, "keys/svc/"+name, nil).Data["key_id"].(string)
	e.ok(logical.UpdateOperation, "keys/svc/"+name+"/revoke", nil)
	newKey = e.issue("svc", name, "r", nil)
	return oldKey, oldID, newKey
}

// An archived key is kept archived_key_retention after the re-issue, then
// deleted with its index entries and key-id pointer, logged first; its
// secret then answers not_found, the new key is untouched.
func TestArchivedKeyPrunedAfterRetention(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"archived_key_retention": "72h"})
	e.setupClientRole("svc", "internal", "r", nil)
	e.retentionTickOn(e.storage)
	oldKey, oldID, newKey := e.reissued("main")
	if !e.archivedExists(oldID) || e.verifyCode(oldKey, nil) != record.CodeRevoked {
		t.Fatal("the re-issue did not archive the revoked key")
	}
	revoked := func() []string {
		return e.ok(logical.ReadOperation, "clients/svc/revocations", nil).Data["revoked_key_ids"].([]string)
	}
	if ids := revoked(); len(ids) != 1 || ids[0] != oldID {
		t.Fatalf("revocation list before the prune: %v", ids)
	}

	e.clock.Set(testStart.Add(72*time.Hour - time.Second))
	e.retentionTickOn(e.storage)
	if !e.archivedExists(oldID) || e.verifyCode(oldKey, nil) != record.CodeRevoked {
		t.Fatal("an archived key was pruned before its retention")
	}

	e.clock.Set(endOfUTCDay(testStart).Add(72 * time.Hour))
	e.periodicTick()
	if e.archivedExists(oldID) {
		t.Fatal("an archived key was kept past its retention")
	}
	if code := e.verifyCode(oldKey, nil); code != record.CodeNotFound {
		t.Fatalf("the pruned key's secret answers %q, want not_found", code)
	}
	if code := e.verifyCode(newKey, nil); code != "" {
		t.Fatalf("the re-issued key answers %q", code)
	}
	if ids := revoked(); len(ids) != 0 {
		t.Fatalf("revocation list after the prune: %v", ids)
	}
	if p, _ := e.storage.Get(e.ctx, storageKeyIDPrefix+oldID); p != nil {
		t.Fatal("the pruned key's key-id pointer was kept")
	}
	evs := e.logEventsOf(eventlog.ArchivedKeysPruned)
	if len(evs) != 1 || evs[0].Details["key_ids"] != oldID || evs[0].Details["archived_key_retention"] != "72h0m0s" {
		t.Fatalf("archived_keys.pruned entries: %+v", evs)
	}
	// Its history stays: issued, revoked, re-issued.
	if len(e.logEventsOf(eventlog.KeyReissued)) != 1 || len(e.logEventsOf(eventlog.KeyRevoked)) != 1 {
		t.Fatal("the archived key's history left the log")
	}
	e.logValid()
	e.checkNoOrphans()
	// The live key still names it among its predecessors.
	preds := e.ok(logical.ReadOperation, "keys/svc/main", nil).Data["predecessors"].([]string)
	if len(preds) != 1 || preds[0] != oldID {
		t.Fatalf("predecessors: %v", preds)
	}
}

// Archived keys are pruned in bounded passes that a restarted backend
// continues; archived_key_retention=0 keeps them; records archived before
// pointers existed are backfilled.
func TestArchivedKeyRetentionBoundedResumesAndBackfills(t *testing.T) {
	e := newTestEnv(t, withRetentionBatch(2))
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"archived_key_retention": "0"})
	e.setupClientRole("svc", "internal", "r", nil)
	e.retentionTickOn(e.storage)
	var ids []string
	for _, n := range []string{"a", "b", "c"} {
		_, id, _ := e.reissued(n)
		ids = append(ids, id)
	}
	// One archived before pointers existed: its record without a pointer.
	legacy := &record.Key{KeyID: "kid_00000000000000000000000000000001", Client: "svc", Name: "gone", Role: "r",
		Revoked: true, RevokedAt: testStart.Add(-500 * record.Day), CreatedAt: testStart.Add(-600 * record.Day)}
	if err := putJSON(e.ctx, e.storage, archivedKeyStorageKey(legacy.KeyID), "archived key", legacy); err != nil {
		t.Fatal(err)
	}
	if err := e.b.putRetentionState(e.ctx, e.storage, e.b.archiveRetention(), &retentionState{Cursor: retentionDay(testStart.Add(-record.Day))}); err != nil {
		t.Fatal(err)
	}
	ids = append(ids, legacy.KeyID)
	left := func() int {
		n := 0
		for _, id := range ids {
			if e.archivedExists(id) {
				n++
			}
		}
		return n
	}
	e.clock.Advance(2 * 365 * record.Day)
	e.retentionTickOn(e.storage)
	if left() != 4 {
		t.Fatal("archived keys were pruned with archived_key_retention=0")
	}

	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"archived_key_retention": "24h"})
	e.retentionTickOn(e.storage)
	if n := left(); n != 2 {
		t.Fatalf("%d archived keys left after a pass bounded to 2, want 2", n)
	}
	// The legacy one, backfilled two years later, is kept the retention
	// from then; a restarted backend walks there a month of days a pass.
	e.restart()
	for j := 0; j < 30; j++ {
		e.retentionTickOn(e.storage)
	}
	if !e.archivedExists(legacy.KeyID) {
		t.Fatal("a backfilled archived key was pruned within the retention of its backfill")
	}
	e.clock.Advance(2 * record.Day)
	for j := 0; j < 30 && left() > 0; j++ {
		e.retentionTickOn(e.storage)
	}
	if n := left(); n != 0 {
		t.Fatalf("%d archived keys left, want 0", n)
	}
	if got := e.prunedIDs(eventlog.ArchivedKeysPruned, "key_ids"); len(got) != 4 || !strings.Contains(strings.Join(got, ","), legacy.KeyID) {
		t.Fatalf("archived_keys.pruned named %v", got)
	}
}
