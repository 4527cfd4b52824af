package backend

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// alertWriteFailing fails the next n writes of an alert record, as Raft
// does for an entry over its size limit.
type alertWriteFailing struct {
	logical.Storage
	n atomic.Int32
}

func (s *alertWriteFailing) Put(ctx context.Context, e *logical.StorageEntry) error {
	if strings.HasPrefix(e.Key, storageAlertPrefix) && s.n.Add(-1) >= 0 {
		return errors.New("put failed: value too large")
	}
	return s.Storage.Put(ctx, e)
}

// leakRecord is what a leak intake left: the key's revocation, the
// leak_reported alerts, and the key.revoked, alert.raised and leak.reported
// (status revoked) log entries.
type leakRecord struct {
	revoked                     bool
	alerts, revokedEv, raisedEv int
	leakEv                      []eventlog.Event
}

func (e *testEnv) leakRecord(client, name string) leakRecord {
	e.t.Helper()
	r := leakRecord{revoked: e.issued(client, name).Revoked, alerts: len(e.alertsOf(record.AlertLeakReported))}
	r.revokedEv = len(e.logEventsOf(eventlog.KeyRevoked))
	for _, ev := range e.logEventsOf(eventlog.AlertRaised) {
		if ev.Details["type"] == record.AlertLeakReported {
			r.raisedEv++
		}
	}
	for _, ev := range e.logEventsOf(eventlog.LeakReported) {
		if ev.Details["status"] == leakRevoked {
			r.leakEv = append(r.leakEv, ev)
		}
	}
	return r
}

// complete asserts a finished intake: revoked, one alert, one of each entry,
// with the time-to-revoke measured from detection.
func (r leakRecord) complete(t *testing.T, ttrMS string) {
	t.Helper()
	if !r.revoked || r.alerts != 1 || r.revokedEv != 1 || r.raisedEv != 1 || len(r.leakEv) != 1 || r.leakEv[0].Details["time_to_revoke_ms"] != ttrMS {
		t.Fatalf("leak intake not complete: %+v", r)
	}
}

// A leak report whose alert cannot be stored is finished by the retry: the
// retry answers revoked with the alert, and the log has every entry once.
func TestLeakIntakeRetryCompletesAfterAlertWriteFails(t *testing.T) {
	e := newTestEnv(t)
	fs := &alertWriteFailing{Storage: e.storage}
	e.storage = fs
	e.setupClientRole("billing", "internal", "r", nil)
	key := e.issue("billing", "main", "r", nil)
	detected := testStart.Add(-30 * time.Second).Format(time.RFC3339)
	report := map[string]interface{}{"key": key, "reporter": "scanner", "source": "https://example.com/x", "detected_at": detected}

	fs.n.Store(1)
	if _, err := e.doErr(logical.UpdateOperation, "leaks", report); err == nil {
		t.Fatal("the report with a failing alert write succeeded")
	}
	e.clock.Advance(time.Minute)
	resp := e.ok(logical.UpdateOperation, "leaks", report)
	if resp.Data["status"] != leakRevoked || resp.Data["alert_id"] == nil || resp.Data["time_to_revoke_seconds"] != 30.0 {
		t.Fatalf("retry answer: %v", resp.Data)
	}
	e.leakRecord("billing", "main").complete(t, "30000")
	if got := e.alertsOf(record.AlertLeakReported)[0].ID; got != resp.Data["alert_id"] {
		t.Fatalf("retry names alert %v, stored %v", resp.Data["alert_id"], got)
	}
	// A later report is harmless, as before.
	if resp := e.ok(logical.UpdateOperation, "leaks", report); resp.Data["status"] != leakAlreadyRevoked {
		t.Fatalf("third report: %v", resp.Data)
	}
	e.logValid()
}

// A crash at any step of the intake leaves nothing (then the retry does it
// all) or everything once recovered (by the retry or Vault's WAL rollback).
func TestLeakIntakeCrashSafe(t *testing.T) {
	for _, step := range []string{"wal", "index", "key", "log", "alert"} {
		for _, recover := range []string{"retry", "rollback"} {
			t.Run(step+"/"+recover, func(t *testing.T) {
				e := newTestEnv(t)
				e.setupClientRole("billing", "internal", "r", nil)
				key := e.issue("billing", "main", "r", nil)
				report := map[string]interface{}{"key": key, "reporter": "scanner", "source": "ticket-1"}
				crashed := false
				e.b.commitHook = func(s string) error {
					if s == step && !crashed {
						crashed = true
						return errors.New("simulated crash")
					}
					return nil
				}
				if _, err := e.doErr(logical.UpdateOperation, "leaks", report); err == nil {
					t.Fatal("the report with a crash succeeded")
				}
				e.b.commitHook = nil
				e.restart()
				if r := e.leakRecord("billing", "main"); !r.revoked && (r.alerts != 0 || r.raisedEv != 0 || len(r.leakEv) != 0) {
					t.Fatalf("a report cut off before the key write left traces: %+v", r)
				}
				switch recover {
				case "retry":
					if resp := e.ok(logical.UpdateOperation, "leaks", report); resp.Data["status"] != leakRevoked {
						t.Fatalf("retry answer: %v", resp.Data)
					}
				case "rollback":
					e.clock.Advance(walRollbackMinAge + time.Minute)
					e.rollbackWALs()
					if !e.issued("billing", "main").Revoked {
						// Cut off before the key write: nothing happened,
						// and the report is simply made again.
						e.ok(logical.UpdateOperation, "leaks", report)
					}
				}
				e.leakRecord("billing", "main").complete(t, "0")
				if code := e.verifyCode(key, nil); code != "revoked" {
					t.Fatalf("verify after recovery: %q", code)
				}
				e.logValid()
			})
		}
	}
}

// An oversized field is refused before anything is written.
func TestLeakReportFieldLimits(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	key := e.issue("billing", "main", "r", nil)
	before := len(e.storageKeys())
	for _, field := range []string{"source", "reporter"} {
		n := fieldLimits[field].Chars + 1
		e.userErr(logical.UpdateOperation, "leaks", map[string]interface{}{"key": key, field: strings.Repeat("x", n)}, field+": at most")
	}
	e.userErr(logical.UpdateOperation, "leaks", map[string]interface{}{"key": key, "detected_at": "yesterday"}, "detected_at")
	if after := len(e.storageKeys()); after != before || e.issued("billing", "main").Revoked {
		t.Fatalf("a refused report wrote storage (%d -> %d entries) or revoked the key", before, after)
	}
	e.ok(logical.UpdateOperation, "leaks", map[string]interface{}{"key": key, "source": strings.Repeat("x", fieldLimits["source"].Chars)})
	e.leakRecord("billing", "main").complete(t, "0")
}

// rollbackWALs runs Vault's WAL rollback on every WAL entry (see
// rotEnv.rollbackWALs).
func (e *testEnv) rollbackWALs() {
	e.t.Helper()
	ids, err := framework.ListWAL(e.ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, id := range ids {
		entry, err := framework.GetWAL(e.ctx, e.storage, id)
		if err != nil || entry == nil {
			e.t.Fatalf("WAL %s: %v", id, err)
		}
		if err := e.b.walRollback(e.ctx, &logical.Request{Storage: e.storage}, entry.Kind, entry.Data); err != nil {
			e.t.Fatalf("rollback of WAL %s: %v", id, err)
		}
		if err := framework.DeleteWAL(e.ctx, e.storage, id); err != nil {
			e.t.Fatal(err)
		}
	}
}
