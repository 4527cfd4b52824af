package backend

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
)

// Disable stops verify with code disabled and enable restores it; versions
// and the rotation schedule are untouched; repeats change and log nothing.
func TestKeyDisableEnable(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "720h"})
	key := e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}).Data["key"].(string)
	before := e.issued("svc", "k")

	e.userErr(logical.UpdateOperation, "keys/svc/k/disable", nil, "reason is required")
	e.userErr(logical.UpdateOperation, "keys/svc/nope/disable", map[string]interface{}{"reason": "x"}, "does not exist")
	resp := e.ok(logical.UpdateOperation, "keys/svc/k/disable", map[string]interface{}{"reason": "INC-1"})
	if resp.Data["state"] != record.StateDisabled || resp.Data["disabled"] != true || resp.Data["disabled_reason"] != "INC-1" {
		t.Fatalf("disable answer = %v", resp.Data)
	}
	if by, ok := resp.Data["disabled_by"].(*record.Actor); !ok || by.EntityID != "entity-alice" {
		t.Fatalf("disabled_by = %#v", resp.Data["disabled_by"])
	}
	if got := e.verifyCode(key, nil); got != record.CodeDisabled {
		t.Fatalf("verify of a disabled key = %q, want disabled", got)
	}
	// The key's own state answers before its client's: locked clients'
	// disabled keys say disabled.
	e.ok(logical.UpdateOperation, "clients/svc/lock", map[string]interface{}{"reason": "x"})
	if got := e.verifyCode(key, nil); got != record.CodeDisabled {
		t.Fatalf("verify of a disabled key of a locked client = %q", got)
	}
	e.ok(logical.UpdateOperation, "clients/svc/unlock", nil)
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	if m["verify_outcomes"].(map[string]uint64)[record.CodeDisabled] != 2 || m["keys_by_state"].(map[string]int)[record.StateDisabled] != 1 {
		t.Fatalf("metrics of a disabled key: %v %v", m["verify_outcomes"], m["keys_by_state"])
	}
	after := e.issued("svc", "k")
	if !after.NextRotationAt.Equal(before.NextRotationAt) || len(after.Versions) != 1 || after.Versions[0].State != record.StateActive {
		t.Fatalf("disable changed versions or schedule: %+v", after)
	}
	n := len(e.logTypes())
	resp = e.ok(logical.UpdateOperation, "keys/svc/k/disable", map[string]interface{}{"reason": "again"})
	if len(resp.Warnings) == 0 || resp.Data["disabled_reason"] != "INC-1" || len(e.logTypes()) != n {
		t.Fatalf("a repeated disable changed something: %v %v", resp.Warnings, resp.Data)
	}

	// While disabled, the key still rotates (a reader keeps the current
	// secret) and stays disabled.
	rot := e.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
	if got := e.verifyCode(rot.Data["key"].(string), nil); got != record.CodeDisabled {
		t.Fatalf("verify of a disabled key's new version = %q", got)
	}

	resp = e.ok(logical.UpdateOperation, "keys/svc/k/enable", nil)
	if resp.Data["state"] != record.StateActive || resp.Data["disabled"] != false || resp.Data["disabled_at"] != nil {
		t.Fatalf("enable answer = %v", resp.Data)
	}
	if got := e.verifyCode(rot.Data["key"].(string), nil); got != "" {
		t.Fatalf("verify after enable = %q", got)
	}
	n = len(e.logTypes())
	if resp := e.ok(logical.UpdateOperation, "keys/svc/k/enable", nil); len(resp.Warnings) == 0 || len(e.logTypes()) != n {
		t.Fatal("a repeated enable did not warn or logged")
	}
	dis, en := e.logEventsOf(eventlog.KeyDisabled), e.logEventsOf(eventlog.KeyEnabled)
	if len(dis) != 1 || dis[0].Details["reason"] != "INC-1" || dis[0].Details["before.disabled"] != "false" || dis[0].Details["after.disabled"] != "true" || dis[0].KeyID != before.KeyID || dis[0].Actor.EntityID != "entity-alice" {
		t.Fatalf("key.disabled entries = %+v", dis)
	}
	if len(en) != 1 || en[0].Details["disabled_reason"] != "INC-1" {
		t.Fatalf("key.enabled entries = %+v", en)
	}

	// Revoked keys can be neither disabled nor enabled.
	e.ok(logical.DeleteOperation, "keys/svc/k", nil)
	e.userErr(logical.UpdateOperation, "keys/svc/k/disable", map[string]interface{}{"reason": "x"}, "revoked")
	e.userErr(logical.UpdateOperation, "keys/svc/k/enable", nil, "revoked")
}

// setKeyDisabled, the entry point for bulk operations, reports whether it
// changed the key and carries extra details into the log entry.
func TestSetKeyDisabledForBulkOperations(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	changed, err := e.b.setKeyDisabled(e.ctx, nil, e.storage, "svc", "k", true, "bulk", map[string]string{"operation_id": "op_1"})
	if err != nil || !changed {
		t.Fatalf("setKeyDisabled = %v, %v", changed, err)
	}
	if changed, err := e.b.setKeyDisabled(e.ctx, nil, e.storage, "svc", "k", true, "bulk", nil); err != nil || changed {
		t.Fatalf("second setKeyDisabled = %v, %v", changed, err)
	}
	evs := e.logEventsOf(eventlog.KeyDisabled)
	if len(evs) != 1 || evs[0].Details["operation_id"] != "op_1" || evs[0].Actor.Type != actorSystem {
		t.Fatalf("key.disabled entries = %+v", evs)
	}
	if k := e.issued("svc", "k"); !k.Disabled || k.DisabledBy == nil || k.DisabledBy.Type != actorSystem {
		t.Fatalf("key = %+v", k)
	}
	// A key pasted into the reason is not kept on the record.
	pasted := e.ok(logical.CreateOperation, "keys/svc/k2", map[string]interface{}{"role": "r"}).Data["key"].(string)
	e.ok(logical.UpdateOperation, "keys/svc/k2/disable", map[string]interface{}{"reason": "found " + pasted})
	if k := e.issued("svc", "k2"); strings.Contains(k.DisabledReason, pasted) || !strings.HasPrefix(k.DisabledReason, "found ") {
		t.Fatalf("disabled_reason = %q", k.DisabledReason)
	}
}

// Expiry can be set, extended, shortened and removed, and verify follows.
func TestKeyExpiryUpdate(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}).Data["key"].(string)
	now := e.clock.Now()
	in := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }

	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": "tomorrow"}, "expires_at")
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": in(-time.Hour)}, "expires_at")
	resp := e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": in(2 * time.Hour)})
	if resp.Data["expires_at"] != in(2*time.Hour) {
		t.Fatalf("expires_at = %v", resp.Data["expires_at"])
	}
	e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": in(4 * time.Hour)}) // extend
	e.clock.Advance(3 * time.Hour)
	if got := e.verifyCode(key, nil); got != "" {
		t.Fatalf("verify inside the extended expiry = %q", got)
	}
	e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": "none"}) // remove
	e.clock.Advance(2 * time.Hour)
	if got := e.verifyCode(key, nil); got != "" {
		t.Fatalf("verify after the expiry was removed = %q", got)
	}
	e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": e.clock.Now().Add(time.Minute).Format(time.RFC3339)}) // shorten
	e.clock.Advance(2 * time.Minute)
	if got := e.verifyCode(key, nil); got != record.CodeExpired {
		t.Fatalf("verify after the shortened expiry = %q", got)
	}
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": "none"}, "expired at")

	evs := e.logEventsOf(eventlog.KeyUpdated)
	if len(evs) != 4 || evs[0].Details["before.expires_at"] != "none" || evs[0].Details["after.expires_at"] != in(2*time.Hour) || evs[2].Details["after.expires_at"] != "none" {
		t.Fatalf("key.updated entries = %+v", evs)
	}
	e.ok(logical.DeleteOperation, "keys/svc/k", nil)
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": e.clock.Now().Add(time.Hour).Format(time.RFC3339)}, "revoked")
}

// A role's key_lifetime bounds an extension: at most one lifetime from
// now, and the expiry cannot be removed.
func TestKeyExpiryExtensionWithinRoleLifetime(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"key_lifetime": "240h"})
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	e.clock.Advance(200 * time.Hour)
	at := func(d time.Duration) string { return e.clock.Now().Add(d).Format(time.RFC3339) }
	e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": at(240 * time.Hour)}) // extended by a lifetime
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": at(241 * time.Hour)}, "key_lifetime 240h0m0s")
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"expires_at": "none"}, "key_lifetime")
	if got := e.ok(logical.ReadOperation, "keys/svc/k", nil).Data["expires_at"]; got != at(240*time.Hour) {
		t.Fatalf("expires_at after refused extensions = %v", got)
	}
}

// Scopes narrow within the role; a scope outside the role is refused.
func TestKeyScopesNarrow(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	key := e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}).Data["key"].(string)
	resp := e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"scopes": "orders:read"})
	if !slices.Equal(resp.Data["effective_scopes"].([]string), []string{"orders:read"}) {
		t.Fatalf("effective_scopes = %v", resp.Data["effective_scopes"])
	}
	if got := e.verifyCode(key, map[string]interface{}{"scope": "orders:write"}); got != record.CodeForbiddenScope {
		t.Fatalf("verify of a narrowed-away scope = %q", got)
	}
	if got := e.verifyCode(key, map[string]interface{}{"scope": "orders:read"}); got != "" {
		t.Fatalf("verify of a kept scope = %q", got)
	}
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"scopes": "admin:all"}, "not allowed by role")
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"scopes": "BAD SCOPE"}, "scopes")
	evs := e.logEventsOf(eventlog.KeyUpdated)
	if len(evs) != 1 || evs[0].Details["before.scopes"] != "orders:read orders:write" || evs[0].Details["after.scopes"] != "orders:read" || evs[0].Details["changed"] != "scopes" {
		t.Fatalf("key.updated entries = %+v", evs)
	}
}

// Purpose and metadata updates are logged with before and after; an update
// that changes nothing logs nothing.
func TestKeyUpdateLogsPurposeAndMetadata(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r", "purpose": "a", "metadata": "team=x"})
	e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"purpose": "b", "metadata": "team=y"})
	e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"purpose": "b"})
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{}, "nothing to update")
	evs := e.logEventsOf(eventlog.KeyUpdated)
	if len(evs) != 1 {
		t.Fatalf("key.updated entries = %+v", evs)
	}
	d := evs[0].Details
	if d["before.purpose"] != "a" || d["after.purpose"] != "b" || d["before.metadata"] != "team=x" || d["after.metadata"] != "team=y" || d["changed"] != "metadata,purpose" {
		t.Fatalf("details = %v", d)
	}
}

// A revoked key's name is re-issued: a new key id and secret, the old
// secret still answers revoked, the revocation list keeps the old key, and
// reads return the new key.
func TestKeyReissueAfterRevocation(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", nil)
	first := e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	oldKey, oldID := first.Data["key"].(string), first.Data["key_id"].(string)
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}, "not revoked")
	e.ok(logical.UpdateOperation, "keys/svc/k/revoke", map[string]interface{}{"reason": "leaked"})
	e.userErr(logical.UpdateOperation, "keys/svc/k/rotate", nil, "re-issue it")
	e.userErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"role": "nope"}, "does not exist")

	resp := e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"role": "r", "scopes": "orders:read"})
	newKey, newID := resp.Data["key"].(string), resp.Data["key_id"].(string)
	if newID == oldID || newKey == "" || newKey == oldKey || resp.Data["version"] != 1 || resp.Data["state"] != record.StateActive {
		t.Fatalf("re-issue answer = %v", resp.Data)
	}
	if !slices.Equal(resp.Data["predecessors"].([]string), []string{oldID}) {
		t.Fatalf("predecessors = %v", resp.Data["predecessors"])
	}
	if got := e.verifyCode(oldKey, nil); got != record.CodeRevoked {
		t.Fatalf("old secret after re-issue = %q, want revoked", got)
	}
	if got := e.verifyCode(newKey, nil); got != "" {
		t.Fatalf("new secret = %q", got)
	}
	read := e.ok(logical.ReadOperation, "keys/svc/k", nil)
	if read.Data["key_id"] != newID || read.Data["key"] != newKey {
		t.Fatalf("read after re-issue = %v", read.Data)
	}
	old, err := e.b.getArchivedKey(e.ctx, e.storage, oldID)
	if err != nil || old == nil || !old.Revoked || old.RevokeReason != "leaked" {
		t.Fatalf("archived key = %+v, %v", old, err)
	}
	revs := e.ok(logical.ReadOperation, "clients/svc/revocations", nil).Data
	if !slices.Equal(revs["revoked_key_ids"].([]string), []string{oldID}) {
		t.Fatalf("revocation list = %v", revs)
	}
	evs := e.logEventsOf(eventlog.KeyReissued)
	if len(evs) != 1 || evs[0].KeyID != newID || evs[0].Details["predecessor_key_id"] != oldID {
		t.Fatalf("key.reissued entries = %+v", evs)
	}
	if got := e.ok(logical.ReadOperation, "metrics", nil).Data["issued_total"]; fmt.Sprint(got) != "2" {
		t.Fatalf("issued_total after an issue and a re-issue = %v, want 2", got)
	}

	// A second incident: the chain of predecessors grows, and both old
	// secrets answer revoked.
	e.ok(logical.DeleteOperation, "keys/svc/k", nil)
	third := e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
	if !slices.Equal(third.Data["predecessors"].([]string), []string{oldID, newID}) {
		t.Fatalf("predecessors = %v", third.Data["predecessors"])
	}
	for _, k := range []string{oldKey, newKey} {
		if got := e.verifyCode(k, nil); got != record.CodeRevoked {
			t.Fatalf("old secret = %q, want revoked", got)
		}
	}
	revs = e.ok(logical.ReadOperation, "clients/svc/revocations", nil).Data
	if len(revs["revoked_key_ids"].([]string)) != 2 {
		t.Fatalf("revocation list = %v", revs)
	}
}

// An issuance's expires_at may not outlast the role's key_lifetime.
func TestKeyIssueExpiresAt(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("svc", "internal", "r", map[string]interface{}{"key_lifetime": "24h"})
	now := e.clock.Now()
	e.userErr(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r", "expires_at": now.Add(48 * time.Hour).Format(time.RFC3339)}, "expires_at")
	e.userErr(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r", "expires_at": "none"}, "expires_at")
	resp := e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r", "expires_at": now.Add(time.Hour).Format(time.RFC3339)})
	if resp.Data["expires_at"] != now.Add(time.Hour).Format(time.RFC3339) {
		t.Fatalf("expires_at = %v", resp.Data["expires_at"])
	}
}

// A re-issue cut off mid-commit leaves either the revoked key in place
// (retrying re-issues it) or the new key whose commit the next change of
// the key finishes, logging key.reissued once; the old secret answers
// revoked throughout.
func TestKeyReissueInterrupted(t *testing.T) {
	for _, step := range []string{"index", "key"} {
		t.Run(step, func(t *testing.T) {
			e := newTestEnv(t)
			e.setupClientRole("svc", "internal", "r", nil)
			first := e.ok(logical.CreateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
			oldKey, oldID := first.Data["key"].(string), first.Data["key_id"].(string)
			e.ok(logical.DeleteOperation, "keys/svc/k", nil)
			e.b.commitHook = func(s string) error {
				if s == step {
					return errors.New("storage unavailable")
				}
				return nil
			}
			if resp, err := e.doErr(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"role": "r"}); err == nil && !resp.IsError() {
				t.Fatalf("re-issue with a failing commit succeeded: %v", resp.Data)
			}
			e.b.commitHook = nil
			if got := e.verifyCode(oldKey, nil); got != record.CodeRevoked {
				t.Fatalf("old secret after the failed re-issue = %q", got)
			}
			k := e.issued("svc", "k")
			if step == "index" {
				if k.KeyID != oldID || !k.Revoked {
					t.Fatalf("record after a re-issue cut off before the key write = %+v", k)
				}
				e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"role": "r"})
			} else {
				if k.KeyID == oldID || !slices.Equal(k.Predecessors, []string{oldID}) {
					t.Fatalf("record after a re-issue cut off after the key write = %+v", k)
				}
				e.ok(logical.UpdateOperation, "keys/svc/k", map[string]interface{}{"purpose": "after the crash"})
			}
			if got := e.verifyCode(oldKey, nil); got != record.CodeRevoked {
				t.Fatalf("old secret = %q", got)
			}
			if n := len(e.logEventsOf(eventlog.KeyReissued)); n != 1 {
				t.Fatalf("%d key.reissued entries, want 1", n)
			}
			if old, err := e.b.getArchivedKey(e.ctx, e.storage, oldID); err != nil || old == nil {
				t.Fatalf("archived key = %v, %v", old, err)
			}
		})
	}
}
