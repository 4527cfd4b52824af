package backend

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/keyformat"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

func TestIssueKey(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "720h"})
	resp := e.ok(logical.CreateOperation, "keys/svc/main", map[string]interface{}{
		"role": "r", "scopes": "orders:read", "purpose": "checkout", "metadata": "team=pay",
	})
	key := resp.Data["key"].(string)
	p, err := keyformat.Parse(key)
	if err != nil {
		t.Fatalf("issued key does not parse: %v", err)
	}
	if p.Prefix != "ak" || p.Env != "prod" || len(p.Random) != keyformat.RandomLength(256) {
		t.Fatalf("unexpected key shape: %+v", p)
	}
	if resp.Data["version"] != 1 || resp.Data["state"] != record.StateActive || !strings.HasPrefix(resp.Data["key_id"].(string), "kid_") {
		t.Fatalf("unexpected response: %v", resp.Data)
	}
	// ttl: the next rotation is 30 days away, but a rotation by hand
	// leaves the version read accepted only for the default 24h grace, so
	// readers come back 5 minutes before that (record.AgentTTL).
	if resp.Data["ttl"] != int64(24*3600-5*60) || resp.Data["rotation_period"] != int64(720*3600) {
		t.Fatalf("ttl/rotation_period = %v/%v", resp.Data["ttl"], resp.Data["rotation_period"])
	}
	// Issuer identity is recorded.
	issuer := resp.Data["issued_by"].(record.Actor)
	if issuer.EntityID != "entity-alice" || issuer.Accessor != "accessor-alice" || resp.Data["request_id"] == "" {
		t.Fatalf("issuer not recorded: %+v %v", issuer, resp.Data["request_id"])
	}
	// Internal client: retrievable, the read returns the same secret.
	read := e.ok(logical.ReadOperation, "keys/svc/main", nil)
	if read.Data["key"] != key {
		t.Fatal("retrievable key read did not return the current secret")
	}
	// The plaintext appears in no storage key, and only the HMAC indexes it.
	for _, k := range e.storageKeys() {
		if strings.Contains(k, key) || strings.Contains(k, p.Random) {
			t.Fatalf("storage key %q contains the plaintext", k)
		}
	}
	secret, _ := e.b.hmacSecret(e.ctx, e.storage)
	if ie, _ := e.b.getIndex(e.ctx, e.storage, keyHMAC(secret, key)); ie == nil || ie.Client != "svc" || ie.Version != 1 {
		t.Fatalf("index entry = %+v", ie)
	}
}

func TestExternalKeysAreNotRetrievable(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("partner", "external", "r", nil)
	resp := e.ok(logical.CreateOperation, "keys/partner/k", map[string]interface{}{"role": "r"})
	key := resp.Data["key"].(string)
	read := e.ok(logical.ReadOperation, "keys/partner/k", nil)
	if _, ok := read.Data["key"]; ok {
		t.Fatal("an external client's key was returned on a later read")
	}
	for _, sk := range e.storageKeys() {
		entry, _ := e.storage.Get(e.ctx, sk)
		if entry != nil && strings.Contains(string(entry.Value), key) {
			t.Fatalf("plaintext of a non-retrievable key stored under %q", sk)
		}
	}
}

func TestIssueBadInputsStoreNothing(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"max_keys_per_client": 1})
	e.ok(logical.CreateOperation, "clients/ext", map[string]interface{}{"owner": "o", "type": "external"})
	e.ok(logical.CreateOperation, "clients/stg", map[string]interface{}{"owner": "o", "allowed_environments": "staging"})
	e.ok(logical.CreateOperation, "roles/internal-only", map[string]interface{}{"scopes": "a", "environment": "prod", "allowed_client_types": "internal"})
	e.ok(logical.CreateOperation, "roles/office", map[string]interface{}{"scopes": "a", "environment": "prod", "issue_bound_cidrs": "192.0.2.0/24"})
	e.ok(logical.CreateOperation, "roles/approved", map[string]interface{}{"scopes": "a", "environment": "prod", "requires_approval": true})
	e.ok(logical.CreateOperation, "keys/svc/first", map[string]interface{}{"role": "r"})
	before := len(e.storageKeys())
	cases := []struct {
		name, path string
		data       map[string]interface{}
		want       string
	}{
		{"no role", "keys/svc/k", map[string]interface{}{}, "role is required"},
		{"unknown role", "keys/svc/k", map[string]interface{}{"role": "nope"}, "role \"nope\" does not exist"},
		{"unknown client", "keys/ghost/k", map[string]interface{}{"role": "r"}, "client \"ghost\" does not exist"},
		{"scopes outside role", "keys/svc/k", map[string]interface{}{"role": "r", "scopes": "orders:read,billing:write"}, "billing:write"},
		{"bad scope", "keys/svc/k", map[string]interface{}{"role": "r", "scopes": "a b*"}, "scopes"},
		{"bad key name", "keys/svc/bad name", map[string]interface{}{"role": "r"}, "key name"},
		{"bad client name", "keys/sv c/k", map[string]interface{}{"role": "r"}, "client name"},
		{"wrong client type", "keys/ext/k", map[string]interface{}{"role": "internal-only"}, "only to internal clients"},
		{"environment not allowed", "keys/stg/k", map[string]interface{}{"role": "r"}, "environments staging"},
		{"over max keys", "keys/svc/second", map[string]interface{}{"role": "r"}, "max_keys_per_client"},
		{"issue from outside cidr", "keys/svc/k", map[string]interface{}{"role": "office"}, "allows issuance only from"},
		{"approval required", "keys/svc/k", map[string]interface{}{"role": "approved"}, "approv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { e.userErr(logical.CreateOperation, tc.path, tc.data, tc.want) })
	}
	if after := len(e.storageKeys()); after != before {
		t.Fatalf("rejected issuances changed storage: %d keys before, %d after", before, after)
	}
}

func TestExistingKeyUpdateOnlyMetadata(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}, "already exists")
	resp := e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"purpose": "new purpose"})
	if resp.Data["purpose"] != "new purpose" || resp.Data["version"] != 1 {
		t.Fatalf("update = %v", resp.Data)
	}
}

func keyVersions(t *testing.T, e *testEnv, path string) map[int]string {
	t.Helper()
	resp := e.ok(logical.ReadOperation, path, nil)
	out := map[int]string{}
	for _, v := range resp.Data["versions"].([]map[string]interface{}) {
		out[v["version"].(int)] = v["state"].(string)
	}
	return out
}

func TestRotateStagePromoteRollbackRevoke(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"grace_period": "1h"})
	first := e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}).Data["key"].(string)

	e.clock.Advance(time.Minute)
	rot := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	second := rot.Data["key"].(string)
	if second == first || rot.Data["version"] != 2 {
		t.Fatalf("rotate = %v", rot.Data)
	}
	if got := keyVersions(t, e, "keys/svc/k"); got[1] != record.StatePrevious || got[2] != record.StateActive {
		t.Fatalf("after rotate: %v", got)
	}
	if e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["key"] != second {
		t.Fatal("read does not return the new secret")
	}

	// Stage a third version: the active one stays.
	staged := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", map[string]interface{}{"stage": true})
	if staged.Data["version"] != 3 || staged.Data["version_state"] != record.StatePending {
		t.Fatalf("stage = %v", staged.Data)
	}
	e.userErr(logical.UpdateOperation, "keys/svc/k/rotate", map[string]interface{}{"stage": true}, "already pending")
	if got := keyVersions(t, e, "keys/svc/k"); got[2] != record.StateActive || got[3] != record.StatePending {
		t.Fatalf("after stage: %v", got)
	}
	e.ok(logical.UpdateOperation, "keys/svc/k/promote", nil)
	if got := keyVersions(t, e, "keys/svc/k"); got[1] != record.StateRetired || got[2] != record.StatePrevious || got[3] != record.StateActive {
		t.Fatalf("after promote: %v", got)
	}
	e.userErr(logical.UpdateOperation, "keys/svc/k/promote", nil, "no pending version")

	// Roll back to version 2 while in grace; 3 stays accepted as previous.
	e.ok(logical.UpdateOperation, "keys/svc/k/rollback", nil)
	if got := keyVersions(t, e, "keys/svc/k"); got[2] != record.StateActive || got[3] != record.StatePrevious {
		t.Fatalf("after rollback: %v", got)
	}
	// Past grace, rollback is refused.
	e.clock.Advance(2 * time.Hour)
	e.userErr(logical.UpdateOperation, "keys/svc/k/rollback", nil, "past its grace period")

	// Revoke one version, then the whole key.
	e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"version": 3, "reason": "test"})
	if got := keyVersions(t, e, "keys/svc/k"); got[3] != record.StateRevoked || got[2] != record.StateActive {
		t.Fatalf("after version revoke: %v", got)
	}
	e.userErr(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"version": 9}, "no version 9")
	resp := e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"reason": "incident"})
	if resp.Data["state"] != record.StateRevoked {
		t.Fatalf("revoke = %v", resp.Data)
	}
	read := e.ok(logical.ReadOperation, "keys/svc/k", nil)
	if _, ok := read.Data["key"]; ok {
		t.Fatal("a revoked key's secret is still readable")
	}
	e.userErr(logical.UpdateOperation, "keys/svc/k/rotate", nil, "revoked")
}

func TestLifecycleLogChainsAndDetectsTampering(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"reason": "r"})

	v := e.ok(logical.ReadOperation, "log/verify", nil)
	if v.Data["valid"] != true || v.Data["entries"] != uint64(5) {
		t.Fatalf("log/verify = %v", v.Data)
	}
	page := e.ok(logical.ReadOperation, "log", map[string]interface{}{"after": 2, "limit": 2})
	entries := page.Data["entries"].([]map[string]interface{})
	if len(entries) != 2 || entries[0]["type"] != eventlog.KeyIssued || entries[1]["type"] != eventlog.KeyRotated || page.Data["next_after"] != uint64(4) {
		t.Fatalf("log page = %v", page.Data)
	}
	actor := entries[0]["actor"].(map[string]interface{})
	if actor["entity_id"] != "entity-alice" || entries[0]["request_id"] == "" || entries[0]["key_id"] == "" {
		t.Fatalf("issuance entry lacks actor/request/key id: %v", entries[0])
	}

	// Tamper: change the reason of the revocation entry in storage.
	entry, _ := e.storage.Get(e.ctx, "log/entries/00000000000000000005")
	entry.Value = []byte(strings.Replace(string(entry.Value), `"reason":"r"`, `"reason":"x"`, 1))
	if !strings.Contains(string(entry.Value), `"reason":"x"`) {
		t.Fatalf("tamper did not apply: %s", entry.Value)
	}
	if err := e.storage.Put(e.ctx, entry); err != nil {
		t.Fatal(err)
	}
	v = e.ok(logical.ReadOperation, "log/verify", nil)
	if v.Data["valid"] != false || v.Data["broken_at"] != uint64(5) {
		t.Fatalf("tampering not detected: %v", v.Data)
	}
}

func TestConcurrentOperationsOnOneKeyLoseNothing(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"grace_period": "1h"})
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	const rotations = 40
	var wg sync.WaitGroup
	for i := 0; i < rotations; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
		}()
	}
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			e.ok(logical.CreateOperation, fmt.Sprintf("keys/svc/other-%d", i), map[string]interface{}{"role": "r"})
			e.ok(logical.ReadOperation, "keys/svc/k", nil)
		}(i)
	}
	wg.Wait()
	k, err := e.b.getKey(e.ctx, e.storage, "svc", "k")
	if err != nil {
		t.Fatal(err)
	}
	if k.LatestVersion() != rotations+1 {
		t.Fatalf("latest version %d, want %d: a rotation was lost", k.LatestVersion(), rotations+1)
	}
	if len(k.Versions) != record.MaxKeptVersions {
		t.Fatalf("kept %d versions, want %d", len(k.Versions), record.MaxKeptVersions)
	}
	active := 0
	for _, v := range k.Versions {
		if v.State == record.StateActive {
			active++
		}
	}
	if active != 1 {
		t.Fatalf("%d active versions", active)
	}
	// Every index entry points at a version the key record holds.
	idx, _ := e.storage.List(e.ctx, storageIndexPrefix)
	held := map[string]bool{}
	for _, v := range k.Versions {
		held[v.HMAC] = true
	}
	count := 0
	for _, h := range idx {
		ie, _ := e.b.getIndex(e.ctx, e.storage, h)
		if ie.Client == "svc" && ie.Name == "k" {
			count++
			if !held[h] {
				t.Fatalf("orphan index entry for version %d", ie.Version)
			}
		}
	}
	if count != record.MaxKeptVersions {
		t.Fatalf("%d index entries for the key, want %d", count, record.MaxKeptVersions)
	}
	if v := e.ok(logical.ReadOperation, "log/verify", nil); v.Data["valid"] != true {
		t.Fatalf("log chain broken under concurrency: %v", v.Data)
	}
}

func TestInventoryFilters(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("a", "internal", "r", map[string]interface{}{"rotation_period": "48h"})
	e.ok(logical.CreateOperation, "clients/b", map[string]interface{}{"owner": "team-b"})
	e.ok(logical.CreateOperation, "roles/r2", map[string]interface{}{"scopes": "x", "environment": "staging", "rotation_period": "720h"})
	e.ok(logical.CreateOperation, "keys/a/k1", map[string]interface{}{"role": "r"})
	e.ok(logical.CreateOperation, "keys/b/k2", map[string]interface{}{"role": "r2"})
	e.ok(logical.CreateOperation, "keys/b/k3", map[string]interface{}{"role": "r2"})
	e.ok(logical.UpdateOperation, "keys/b/k3/revoke", nil)
	count := func(filter map[string]interface{}) int {
		return e.ok(logical.ReadOperation, "inventory", filter).Data["count"].(int)
	}
	cases := []struct {
		filter map[string]interface{}
		want   int
	}{
		{nil, 3},
		{map[string]interface{}{"client": "b"}, 2},
		{map[string]interface{}{"role": "r"}, 1},
		{map[string]interface{}{"owner": "team-b"}, 2},
		{map[string]interface{}{"state": "revoked"}, 1},
		{map[string]interface{}{"state": "active"}, 2},
		{map[string]interface{}{"expiring_within": "72h"}, 1},
		{map[string]interface{}{"unused_for": "1h"}, 0},
	}
	for _, tc := range cases {
		if got := count(tc.filter); got != tc.want {
			t.Errorf("inventory %v: %d keys, want %d", tc.filter, got, tc.want)
		}
	}
	e.clock.Advance(2 * time.Hour)
	if got := count(map[string]interface{}{"unused_for": "1h"}); got != 3 {
		t.Errorf("unused_for after 2h: %d keys, want 3", got)
	}
	e.userErr(logical.ReadOperation, "inventory", map[string]interface{}{"state": "weird"}, "state must be")
}

func TestWALRollbackRemovesOrphanIndexEntries(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	first := e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}).Data["key"].(string)
	for _, step := range []string{"wal", "index"} {
		e.b.commitHook = func(s string) error {
			if s == step {
				return fmt.Errorf("injected crash after %s", s)
			}
			return nil
		}
		if _, err := e.doErr(logical.UpdateOperation, "keys/svc/k/rotate", nil); err == nil {
			t.Fatalf("crash after %s was not reported", step)
		}
		e.b.commitHook = nil
		// The old state is intact: version 1 active, its index entry valid.
		k, _ := e.b.getKey(e.ctx, e.storage, "svc", "k")
		if k.LatestVersion() != 1 || k.Current().Version != 1 {
			t.Fatalf("crash after %s changed the key record: %+v", step, k.Versions)
		}
		secret, _ := e.b.hmacSecret(e.ctx, e.storage)
		if ie, _ := e.b.getIndex(e.ctx, e.storage, keyHMAC(secret, first)); ie == nil {
			t.Fatal("index entry of the current key was lost")
		}
		// Roll back every pending WAL entry.
		ids, _ := e.storage.List(e.ctx, "wal/")
		if len(ids) != 1 {
			t.Fatalf("%d WAL entries after crash at %s, want 1", len(ids), step)
		}
		w, err := framework.GetWAL(e.ctx, e.storage, ids[0])
		if err != nil || w == nil {
			t.Fatalf("reading WAL: %v", err)
		}
		if err := e.b.walRollback(e.ctx, &logical.Request{Storage: e.storage}, w.Kind, w.Data); err != nil {
			t.Fatal(err)
		}
		_ = framework.DeleteWAL(e.ctx, e.storage, ids[0])
		idx, _ := e.storage.List(e.ctx, storageIndexPrefix)
		if len(idx) != 1 {
			t.Fatalf("after rollback of crash at %s: %d index entries, want 1 (orphans left)", step, len(idx))
		}
	}
}

func TestKeyReadTTLWhenRotationOverdue(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "1m"})
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	if ttl := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["ttl"]; ttl != int64(45) {
		t.Fatalf("ttl = %v, want 45 (the 1m grace less a quarter)", ttl)
	}
	e.clock.Advance(61 * time.Minute) // due, and no tick has rotated it yet
	if ttl := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["ttl"]; ttl != int64(record.OverdueRecheck/time.Second) {
		t.Fatalf("overdue ttl = %v, want %d so Agent re-checks shortly", ttl, record.OverdueRecheck/time.Second)
	}
	e.ok(logical.UpdateOperation, "keys/svc/k/revoke", nil)
	if ttl := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["ttl"]; ttl != int64(0) {
		t.Fatalf("revoked key ttl = %v, want 0", ttl)
	}
}

// A crash after the key record dropped old versions, before their index
// entries were deleted, must not leave orphans once the WAL is rolled back.
func TestWALRollbackRemovesIndexEntriesOfDroppedVersions(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"grace_period": "0s"})
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	for i := 0; i < record.MaxKeptVersions-1; i++ {
		e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	}
	e.b.commitHook = func(step string) error {
		if step == "key" {
			return errInjected
		}
		return nil
	}
	if _, err := e.doErr(logical.UpdateOperation, "keys/svc/k/rotate", nil); err == nil {
		t.Fatal("injected crash was not reported")
	}
	e.b.commitHook = nil
	ids, _ := e.storage.List(e.ctx, "wal/")
	if len(ids) != 1 {
		t.Fatalf("%d WAL entries, want 1", len(ids))
	}
	w, err := framework.GetWAL(e.ctx, e.storage, ids[0])
	if err != nil || w == nil {
		t.Fatalf("reading WAL: %v", err)
	}
	if err := e.b.walRollback(e.ctx, &logical.Request{Storage: e.storage}, w.Kind, w.Data); err != nil {
		t.Fatal(err)
	}
	k, _ := e.b.getKey(e.ctx, e.storage, "svc", "k")
	held := map[string]bool{}
	for _, v := range k.Versions {
		held[v.HMAC] = true
	}
	idx, _ := e.storage.List(e.ctx, storageIndexPrefix)
	for _, h := range idx {
		if !held[h] {
			t.Fatal("orphan index entry left for a dropped version")
		}
	}
	if len(idx) != len(k.Versions) {
		t.Fatalf("%d index entries for %d versions", len(idx), len(k.Versions))
	}
}

func TestTurningRetrievableOffStopsReadsAndStorage(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"retrievable": true, "grace_period": "1h"})
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"retrievable": false})
	if _, ok := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["key"]; ok {
		t.Fatal("secret still readable after the role turned retrievable off")
	}
	rot := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	if rot.Data["key"] == "" {
		t.Fatal("rotation did not return the new secret once")
	}
	k, _ := e.b.getKey(e.ctx, e.storage, "svc", "k")
	for _, v := range k.Versions {
		if v.Secret != "" {
			t.Fatalf("version %d still stores its plaintext", v.Version)
		}
	}
}

func TestRetiredVersionsDropTheirPlaintext(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"grace_period": "1h"})
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil) // v1: previous → retired
	k, _ := e.b.getKey(e.ctx, e.storage, "svc", "k")
	if v := k.Version(1); v.State != record.StateRetired || v.Secret != "" {
		t.Fatalf("version 1 is %s and keeps plaintext: %v", v.State, v.Secret != "")
	}
	if v := k.Version(2); v.State != record.StatePrevious || v.Secret == "" {
		t.Fatalf("version 2 (previous, in grace) should keep its plaintext until retired")
	}
}

// Keys inherit their client's owner (SPEC §6): after a hand-over the
// inventory and key reads name the new owner, not the one at issuance.
func TestKeysFollowTheirClientsOwner(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.issue("svc", "k", "r", nil)
	e.ok(logical.UpdateOperation, "clients/svc", map[string]interface{}{"owner": "team-new"})
	inv := e.ok(logical.ReadOperation, "inventory", map[string]interface{}{"owner": "team-new"})
	if inv.Data["count"].(int) != 1 || inv.Data["keys"].([]map[string]interface{})[0]["owner"] != "team-new" {
		t.Fatalf("inventory owner=team-new: %v", inv.Data)
	}
	if n := e.ok(logical.ReadOperation, "inventory", map[string]interface{}{"owner": "team-svc"}).Data["count"].(int); n != 0 {
		t.Fatalf("the previous owner still lists %d keys", n)
	}
	if got := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["owner"]; got != "team-new" {
		t.Fatalf("key read owner = %v", got)
	}
	if got := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil).Data["owner"]; got != "team-new" {
		t.Fatalf("rotate response owner = %v", got)
	}
}

// Revocation is final and idempotent: revoking a version of a key that is
// already revoked (or the key again) changes nothing, keeps the original
// time and reason, logs nothing and says so in a warning.
func TestRevokeAgainKeepsOriginalRevocation(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.issue("svc", "k", "r", nil)
	e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"reason": "leaked in a log"})
	before := e.issued("svc", "k")
	events := len(e.logEventsOf(eventlog.KeyRevoked))
	storedBefore, _ := e.storage.Get(e.ctx, keyStorageKey("svc", "k"))

	e.clock.Advance(48 * time.Hour)
	for _, data := range []map[string]interface{}{
		{"version": 1, "reason": "oops"},
		{"reason": "again"},
	} {
		resp := e.ok(logical.UpdateOperation, "keys/svc/k/revoke", data)
		if len(resp.Data["revoked_versions"].([]int)) != 0 || resp.Data["state"] != record.StateRevoked {
			t.Fatalf("revoke %v again = %v", data, resp.Data)
		}
		if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "already revoked") ||
			!strings.Contains(resp.Warnings[0], `reason "leaked in a log"`) || !strings.Contains(resp.Warnings[0], testStart.Format(time.RFC3339)) {
			t.Fatalf("revoke %v again: warnings %q", data, resp.Warnings)
		}
	}
	after := e.issued("svc", "k")
	if !after.RevokedAt.Equal(before.RevokedAt) || after.RevokeReason != before.RevokeReason {
		t.Fatalf("key revocation rewritten: %s %q -> %s %q", before.RevokedAt, before.RevokeReason, after.RevokedAt, after.RevokeReason)
	}
	if v := after.Version(1); !v.RevokedAt.Equal(testStart) || v.RevokeReason != "leaked in a log" {
		t.Fatalf("version 1 revocation rewritten: %s %q", v.RevokedAt, v.RevokeReason)
	}
	if n := len(e.logEventsOf(eventlog.KeyRevoked)); n != events {
		t.Fatalf("%d key.revoked events after revoking again, want %d", n, events)
	}
	if storedAfter, _ := e.storage.Get(e.ctx, keyStorageKey("svc", "k")); string(storedAfter.Value) != string(storedBefore.Value) {
		t.Fatal("revoking again rewrote the key record")
	}
}

// Revoking a retired version of a revoked key is a change (the version
// becomes revoked, e.g. found leaked later): it is stored and logged, and
// the key's own revocation keeps its time and reason.
func TestRevokeRetiredVersionOfRevokedKeyIsLogged(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"grace_period": "0"})
	e.issue("svc", "k", "r", nil)
	e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil) // v1 retired at once
	e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"reason": "incident"})
	if got := keyVersions(t, e, "keys/svc/k"); got[1] != record.StateRetired || got[2] != record.StateRevoked {
		t.Fatalf("versions %v", got)
	}
	e.clock.Advance(time.Hour)
	resp := e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"version": 1, "reason": "v1 found in a paste"})
	if got := resp.Data["revoked_versions"].([]int); len(got) != 1 || got[0] != 1 || len(resp.Warnings) != 0 {
		t.Fatalf("revoke retired v1 = %v, warnings %q", resp.Data, resp.Warnings)
	}
	k := e.issued("svc", "k")
	if v := k.Version(1); v.State != record.StateRevoked || v.RevokeReason != "v1 found in a paste" || !v.RevokedAt.Equal(e.clock.Now()) {
		t.Fatalf("v1 = %+v", v)
	}
	if !k.RevokedAt.Equal(testStart) || k.RevokeReason != "incident" {
		t.Fatalf("key revocation rewritten: %s %q", k.RevokedAt, k.RevokeReason)
	}
	evs := e.logEventsOf(eventlog.KeyRevoked)
	last := evs[len(evs)-1]
	if last.Version != 1 || last.Details["versions"] != "1" || last.Details["reason"] != "v1 found in a paste" || last.Details["key_revoked"] != "" {
		t.Fatalf("last key.revoked = %+v", last)
	}
}

// Revoking the last accepted version revokes the key; the event says so.
func TestRevokeLastAcceptedVersionRevokesKey(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.issue("svc", "k", "r", nil)
	resp := e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"version": 1, "reason": "leaked"})
	if resp.Data["state"] != record.StateRevoked || len(resp.Warnings) != 0 {
		t.Fatalf("revoke v1 = %v %q", resp.Data, resp.Warnings)
	}
	if k := e.issued("svc", "k"); !k.Revoked || k.RevokeReason != "leaked" || !k.RevokedAt.Equal(testStart) {
		t.Fatalf("key = revoked %v %q %s", k.Revoked, k.RevokeReason, k.RevokedAt)
	}
	evs := e.logEventsOf(eventlog.KeyRevoked)
	if len(evs) != 1 || evs[0].Details["key_revoked"] != "true" || evs[0].Details["versions"] != "1" {
		t.Fatalf("key.revoked events = %+v", evs)
	}
}
