package backend

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// noticePeriod is the rotation period of the notice tests' role.
const noticePeriod = 30 * record.Day

// noticeEnv is a test env with client "acme" of type typ (external: keys
// are not retrievable, so their owner rotates them) and role "r" rotating
// every 30d plus the fields of role; it issues key acme/main and returns
// it.
func noticeEnv(t *testing.T, typ string, role map[string]interface{}) (*testEnv, *record.Key) {
	t.Helper()
	e := newTestEnv(t)
	fields := map[string]interface{}{"rotation_period": "720h", "grace_period": "1h"}
	for k, v := range role {
		fields[k] = v
	}
	e.setupClientRole("acme", typ, "r", fields)
	e.ok(logical.CreateOperation, "keys/acme/main", map[string]interface{}{"role": "r"})
	return e, e.issued("acme", "main")
}

// at moves the fake clock to t (never back).
func (e *testEnv) at(t time.Time) {
	e.t.Helper()
	d := t.Sub(e.clock.Now())
	if d < 0 {
		e.t.Fatalf("clock cannot go back %s", -d)
	}
	e.clock.Advance(d)
}

// checkNotice fails unless ev is a notice of type typ about k at version
// v, from "system", with exactly details want.
func checkNotice(t *testing.T, ev eventlog.Event, typ string, k *record.Key, v int, want map[string]string) {
	t.Helper()
	if ev.Type != typ || ev.Actor.Type != actorSystem {
		t.Fatalf("notice %s by %q, want %s by system", ev.Type, ev.Actor.Type, typ)
	}
	if ev.Client != k.Client || ev.Key != k.Name || ev.KeyID != k.KeyID || ev.Role != k.Role || ev.Version != v {
		t.Fatalf("notice names %s/%s %s role %s v%d, want %s/%s %s role %s v%d",
			ev.Client, ev.Key, ev.KeyID, ev.Role, ev.Version, k.Client, k.Name, k.KeyID, k.Role, v)
	}
	if !reflect.DeepEqual(ev.Details, want) {
		t.Fatalf("notice details %v, want %v", ev.Details, want)
	}
}

// Each lead time gives one notice as it is reached, and none twice; the
// overdue alert still follows.
func TestRotationNoticeOncePerLeadTime(t *testing.T) {
	e, k := noticeEnv(t, "external", nil)
	due := k.NextRotationAt
	if k.Retrievable || !due.Equal(k.CreatedAt.Add(noticePeriod)) {
		t.Fatalf("setup: retrievable %v, due %v", k.Retrievable, due)
	}
	dueAt := due.Format(time.RFC3339)
	for i, lead := range []time.Duration{336 * time.Hour, 72 * time.Hour, 24 * time.Hour} {
		e.at(due.Add(-lead - time.Second))
		e.tick()
		if n := len(e.logEventsOf(eventlog.KeyRotationDueSoon)); n != i {
			t.Fatalf("%s+1s before due: %d notices, want %d", lead, n, i)
		}
		e.clock.Advance(time.Second)
		e.tick()
		e.tick()
		evs := e.logEventsOf(eventlog.KeyRotationDueSoon)
		if len(evs) != i+1 {
			t.Fatalf("%s before due: %d notices, want %d", lead, len(evs), i+1)
		}
		checkNotice(t, evs[i], eventlog.KeyRotationDueSoon, k, 1, map[string]string{"due_at": dueAt, "lead": lead.String()})
	}
	e.at(due.Add(governance.OverdueTolerance + time.Minute))
	e.tick()
	if n := len(e.logEventsOf(eventlog.KeyRotationDueSoon)); n != 3 {
		t.Fatalf("notices once overdue: %d, want 3", n)
	}
	if n := len(e.alertsOf(record.AlertRotationOverdue)); n != 1 {
		t.Fatalf("overdue alerts: %d, want 1", n)
	}
}

// A key first seen within several lead times is notified once, for the
// shortest reached; a rotation gives a new due time, notified again.
func TestRotationNoticeSmallestLeadAndResetByRotation(t *testing.T) {
	e, k := noticeEnv(t, "external", nil)
	due := k.NextRotationAt
	e.at(due.Add(-48 * time.Hour))
	e.tick()
	e.tick()
	evs := e.logEventsOf(eventlog.KeyRotationDueSoon)
	if len(evs) != 1 {
		t.Fatalf("%d notices with 336h and 72h reached at once, want 1", len(evs))
	}
	checkNotice(t, evs[0], eventlog.KeyRotationDueSoon, k, 1, map[string]string{"due_at": due.Format(time.RFC3339), "lead": "72h0m0s"})

	e.ok(logical.UpdateOperation, "keys/acme/main/rotate", nil)
	e.tick()
	if m, ok := e.marksOf(k.KeyID); ok {
		t.Fatalf("marks of a rotated key not yet due again: %+v", m)
	}
	k2 := e.issued("acme", "main")
	if !k2.NextRotationAt.After(due) {
		t.Fatalf("rotation did not move the due time: %v", k2.NextRotationAt)
	}
	e.at(k2.NextRotationAt.Add(-2 * time.Hour))
	e.tick()
	evs = e.logEventsOf(eventlog.KeyRotationDueSoon)
	if len(evs) != 2 {
		t.Fatalf("%d notices after the rotation, want 2", len(evs))
	}
	checkNotice(t, evs[1], eventlog.KeyRotationDueSoon, k2, 2, map[string]string{"due_at": k2.NextRotationAt.Format(time.RFC3339), "lead": "24h0m0s"})
}

// Keys rotated automatically, revoked keys, expired keys and a mount with
// no lead times get no rotation notice.
func TestRotationNoticeOnlyForLiveKeysTheOwnerRotates(t *testing.T) {
	t.Run("auto_rotating", func(t *testing.T) {
		e, k := noticeEnv(t, "internal", nil)
		if !record.AutoRotates(k) {
			t.Fatal("setup: an internal client's key does not rotate automatically")
		}
		e.at(k.NextRotationAt.Add(-time.Hour))
		e.tick()
		if n := len(e.logEventsOf(eventlog.KeyRotationDueSoon)); n != 0 {
			t.Fatalf("%d notices for a key rotated automatically", n)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		e, k := noticeEnv(t, "external", nil)
		e.ok(logical.UpdateOperation, "keys/acme/main/revoke", nil)
		e.at(k.NextRotationAt.Add(-time.Hour))
		e.tick()
		if n := len(e.logEventsOf(eventlog.KeyRotationDueSoon)); n != 0 {
			t.Fatalf("%d notices for a revoked key", n)
		}
	})
	t.Run("expired", func(t *testing.T) {
		e, k := noticeEnv(t, "external", map[string]interface{}{"key_lifetime": "672h"}) // 28d
		e.at(k.ExpiresAt)
		e.tick()
		if n := len(e.logEventsOf(eventlog.KeyRotationDueSoon)); n != 0 {
			t.Fatalf("%d notices for an expired key", n)
		}
		if m, ok := e.marksOf(k.KeyID); ok {
			t.Fatalf("marks of an expired key: %+v", m)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		e, k := noticeEnv(t, "external", nil)
		e.ok(logical.UpdateOperation, "config", map[string]interface{}{"rotation_notice_lead_times": ""})
		e.at(k.NextRotationAt.Add(-time.Hour))
		e.tick()
		if n := len(e.logEventsOf(eventlog.KeyRotationDueSoon)); n != 0 {
			t.Fatalf("%d notices with rotation_notice_lead_times empty", n)
		}
	})
}

// The notice is appended before its mark is stored: a tick that fails to
// store the mark repeats the notice next time rather than losing it.
func TestRotationNoticeRepeatedNotLostWhenMarkNotStored(t *testing.T) {
	e, k := noticeEnv(t, "external", nil)
	e.at(k.NextRotationAt.Add(-time.Hour))
	failing := &failPutStorage{Storage: e.storage, prefix: governance.MarksPrefix}
	if err := e.b.governanceTick(e.ctx, &logical.Request{Storage: failing}); err == nil {
		t.Fatal("tick stored marks on a storage that refuses them")
	}
	if n := len(e.logEventsOf(eventlog.KeyRotationDueSoon)); n != 1 {
		t.Fatalf("%d notices from the failed tick, want 1", n)
	}
	e.tick()
	e.tick()
	if n := len(e.logEventsOf(eventlog.KeyRotationDueSoon)); n != 2 {
		t.Fatalf("%d notices after the mark was lost, want 2 (one repeat)", n)
	}
}

// failPutStorage refuses writes under prefix.
type failPutStorage struct {
	logical.Storage
	prefix string
}

func (f *failPutStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if strings.HasPrefix(e.Key, f.prefix) {
		return errors.New("storage refused the write")
	}
	return f.Storage.Put(ctx, e)
}

// A role's expiry_notice gives one key.expiring per expiry.
func TestExpiryNoticeOncePerExpiry(t *testing.T) {
	e, k := noticeEnv(t, "internal", map[string]interface{}{"key_lifetime": "240h", "expiry_notice": "48h"})
	if k.ExpiresAt.IsZero() {
		t.Fatal("setup: key has no expiry")
	}
	e.at(k.ExpiresAt.Add(-48*time.Hour - time.Second))
	e.tick()
	if n := len(e.logEventsOf(eventlog.KeyExpiring)); n != 0 {
		t.Fatalf("%d expiry notices before expiry_notice, want 0", n)
	}
	e.clock.Advance(time.Second)
	e.tick()
	e.at(k.ExpiresAt.Add(-time.Minute))
	e.tick()
	evs := e.logEventsOf(eventlog.KeyExpiring)
	if len(evs) != 1 {
		t.Fatalf("%d expiry notices, want 1", len(evs))
	}
	checkNotice(t, evs[0], eventlog.KeyExpiring, k, 1, map[string]string{"expires_at": k.ExpiresAt.Format(time.RFC3339), "lead": "48h0m0s"})
	e.at(k.ExpiresAt.Add(time.Minute))
	e.tick()
	if n := len(e.logEventsOf(eventlog.KeyExpiring)); n != 1 {
		t.Fatalf("%d expiry notices after expiry, want 1", n)
	}
	if m, ok := e.marksOf(k.KeyID); ok {
		t.Fatalf("marks of an expired key: %+v", m)
	}
}

// Without expiry_notice a key that expires gets no notice.
func TestExpiryNoticeOffByDefault(t *testing.T) {
	e, k := noticeEnv(t, "internal", map[string]interface{}{"key_lifetime": "240h"})
	e.at(k.ExpiresAt.Add(-time.Minute))
	e.tick()
	if n := len(e.logEventsOf(eventlog.KeyExpiring)); n != 0 {
		t.Fatalf("%d expiry notices without expiry_notice", n)
	}
	if got := e.ok(logical.ReadOperation, "roles/r", nil).Data["expiry_notice"]; got != int64(0) {
		t.Fatalf("expiry_notice read back %v, want 0", got)
	}
}

func TestNoticeFieldsValidatedAndReadBack(t *testing.T) {
	e := newTestEnv(t)
	leads := func() []int64 {
		return e.ok(logical.ReadOperation, "config", nil).Data["rotation_notice_lead_times"].([]int64)
	}
	if got, want := leads(), []int64{14 * 86400, 3 * 86400, 86400}; !reflect.DeepEqual(got, want) {
		t.Fatalf("default lead times %v, want %v", got, want)
	}
	for _, bad := range []string{"abc", "1h,2h,3h,4h,5h,6h", "0", "0s", "500ms", "-1h", "8761h", "366d"} {
		e.userErr(logical.UpdateOperation, "config", map[string]interface{}{"rotation_notice_lead_times": bad}, "rotation_notice_lead_times")
	}
	if got := leads(); len(got) != 3 {
		t.Fatalf("a refused write changed the lead times: %v", got)
	}
	// Duplicates (3d is 72h) dropped, longest first, day syntax accepted.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"rotation_notice_lead_times": "72h,1d,3d,8760h,90"})
	want := []int64{8760 * 3600, 72 * 3600, 86400, 90}
	if got := leads(); !reflect.DeepEqual(got, want) {
		t.Fatalf("lead times %v, want %v", got, want)
	}
	if got := e.reloaded().ok(logical.ReadOperation, "config", nil).Data["rotation_notice_lead_times"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("lead times after reload %v, want %v", got, want)
	}
	// An empty value disables the notices, and stays empty after a reload.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"rotation_notice_lead_times": ""})
	if got := e.reloaded().ok(logical.ReadOperation, "config", nil).Data["rotation_notice_lead_times"]; !reflect.DeepEqual(got, []int64{}) {
		t.Fatalf("disabled lead times read back %v, want []", got)
	}

	e.setupClientRole("acme", "internal", "r", nil)
	for _, bad := range []string{"8761h", "-1h", "soon"} {
		e.userErr(logical.UpdateOperation, "roles/r", map[string]interface{}{"expiry_notice": bad}, "expiry_notice")
	}
	e.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"expiry_notice": "2d"})
	if got := e.reloaded().ok(logical.ReadOperation, "roles/r", nil).Data["expiry_notice"]; got != int64(48*3600) {
		t.Fatalf("expiry_notice read back %v, want 172800", got)
	}
}
