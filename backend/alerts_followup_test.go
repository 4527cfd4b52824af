package backend

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/detect"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// sumCounts adds up the counts of alerts, checking that each follow-up
// names the alert before it (alerts are listed newest first).
func sumCounts(t *testing.T, alerts []*record.Alert) int {
	t.Helper()
	n := 0
	for i, a := range alerts {
		n += a.Count
		if i+1 < len(alerts) && a.Details["continues"] != alerts[i+1].ID {
			t.Fatalf("%s alert %s continues %q, want %s", a.Type, a.ID, a.Details["continues"], alerts[i+1].ID)
		}
	}
	if last := alerts[len(alerts)-1]; last.Details["continues"] != "" {
		t.Fatalf("first %s alert of the window continues %q", last.Type, last.Details["continues"])
	}
	return n
}

// Failed verifies after a failed_verify_burst alert was handed over (an
// alert read, or a tick) go into a follow-up alert with their own sources,
// not into the object already handed over, which is never stored again:
// 100 unknown keys from a new address must appear in an alert, and the
// counts add up to every failure of the window.
func TestFailedVerifyBurstCountsAfterDrain(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"failed_verify_threshold": 3, "alert_window": "1h"})
	fail := func(n int, ip string) {
		for i := 0; i < n; i++ {
			e.b.onVerify(record.VerifyInput{ClientIP: ip}, record.VerifyResult{Code: record.CodeNotFound})
		}
	}
	fail(4, "203.0.113.9")
	e.ok(logical.ListOperation, "alerts/", nil) // a read hands the alert over
	first := e.alertsOf(record.AlertFailedVerifyBurst)
	if len(first) != 1 || first[0].Count != 4 || first[0].Details["sources"] != "203.0.113.9=4" {
		t.Fatalf("first burst alert: %+v", first)
	}

	e.clock.Advance(time.Second) // alerts list in time order
	fail(100, "198.51.100.7")
	e.ok(logical.ListOperation, "alerts/", nil)
	got := e.alertsOf(record.AlertFailedVerifyBurst)
	if len(got) != 2 || got[0].Count != 100 || got[0].Details["sources"] != "198.51.100.7=100" || got[0].Severity != record.SeverityCritical {
		t.Fatalf("after 100 more failures from a new address: %+v", got)
	}
	if n := sumCounts(t, got); n != 104 {
		t.Fatalf("alerts count %d failures, want 104", n)
	}

	// Across a tick too; nothing new means no new alert.
	e.clock.Advance(time.Second)
	fail(5, "198.51.100.7")
	e.tick()
	e.tick()
	got = e.alertsOf(record.AlertFailedVerifyBurst)
	if len(got) != 3 || got[0].Count != 5 || sumCounts(t, got) != 109 {
		t.Fatalf("after a tick: %+v", got)
	}
	// A new window starts afresh, counting its own failures.
	e.clock.Advance(61 * time.Minute)
	fail(4, "192.0.2.1")
	e.tick()
	if got = e.alertsOf(record.AlertFailedVerifyBurst); len(got) != 4 || got[0].Count != 4 || got[0].Details["continues"] != "" {
		t.Fatalf("new window: %+v", got)
	}
}

// The per-key alerts had the same defect: occurrences counted after a
// drain went into an alert already handed over.
func TestKeyAlertsCountAfterDrain(t *testing.T) {
	e := newTestEnv(t)
	e.setupClientRole("billing", "internal", "r", nil)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"verify_burst_threshold": 2, "alert_window": "1h"})
	k := e.issued("billing", func() string { e.issue("billing", "main", "r", nil); return "main" }())
	ok := record.VerifyResult{Active: true, Key: k, Version: k.Current()}
	scope := func(n int) {
		for i := 0; i < n; i++ {
			e.b.onVerify(record.VerifyInput{Scopes: []string{"admin:all"}}, record.VerifyResult{Code: record.CodeForbiddenScope, Key: k})
		}
	}
	aud := func(n int) {
		for i := 0; i < n; i++ {
			e.b.onVerify(record.VerifyInput{Audience: "payments"}, record.VerifyResult{Code: record.CodeForbiddenAudience, Key: k})
		}
	}
	ip := func(n int) {
		for i := 0; i < n; i++ {
			e.b.onVerify(record.VerifyInput{ClientIP: "8.8.8.8"}, record.VerifyResult{Code: record.CodeForbiddenIP, Key: k})
		}
	}
	scope(3) // verifies 1-3: the third is the first above the burst threshold
	aud(2)
	ip(2)
	e.tick()
	e.clock.Advance(time.Second) // alerts list in time order
	scope(4)
	aud(1)
	ip(3)
	e.ok(logical.ListOperation, "alerts/", nil)
	// The burst: verifies 3 to 7 before the tick, 8 to 15 after.
	for typ, want := range map[string][2]int{
		record.AlertForbiddenScope:    {3, 4},
		record.AlertForbiddenAudience: {2, 1},
		record.AlertForbiddenIP:       {2, 3},
		record.AlertVerifyBurst:       {5, 8},
	} {
		got := e.alertsOf(typ)
		if len(got) != 2 || got[1].Count != want[0] || got[0].Count != want[1] || got[0].KeyID != k.KeyID {
			t.Fatalf("%s alerts: %+v, want counts %v (oldest first)", typ, got, want)
		}
		sumCounts(t, got)
	}

	// new_address, once the key's address set is established.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"verify_burst_threshold": 1000})
	for i := 0; i < detect.EstablishedAfter+1; i++ {
		e.b.onVerify(record.VerifyInput{ClientIP: "10.0.0.1"}, ok)
	}
	e.b.onVerify(record.VerifyInput{ClientIP: "192.0.2.50"}, ok)
	e.tick()
	e.clock.Advance(time.Second)
	e.b.onVerify(record.VerifyInput{ClientIP: "192.0.2.51"}, ok)
	e.b.onVerify(record.VerifyInput{ClientIP: "192.0.2.52"}, ok)
	e.tick()
	got := e.alertsOf(record.AlertNewAddress)
	if len(got) != 2 || got[1].Count != 1 || got[1].Details["client_ip"] != "192.0.2.50" ||
		got[0].Count != 2 || got[0].Details["client_ip"] != "192.0.2.51" {
		t.Fatalf("new_address alerts: %+v", got)
	}
	sumCounts(t, got)
}

// putFailingStorage fails every Put under prefix while failing is set.
type putFailingStorage struct {
	logical.Storage
	prefix  string
	failing bool
}

func (p *putFailingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if p.failing && strings.HasPrefix(e.Key, p.prefix) {
		return errors.New("storage unavailable")
	}
	return p.Storage.Put(ctx, e)
}

// An alert that could not be stored is kept for the next flush, with its
// count: none is lost, and the retry stores it once.
func TestAlertNotStoredIsRetried(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"failed_verify_threshold": 3, "alert_window": "1h"})
	for i := 0; i < 5; i++ {
		e.b.onVerify(record.VerifyInput{ClientIP: "203.0.113.9"}, record.VerifyResult{Code: record.CodeNotFound})
	}
	s := &putFailingStorage{Storage: e.storage, prefix: storageAlertPrefix, failing: true}
	if err := e.b.flushDetections(e.ctx, s); err == nil {
		t.Fatal("flush succeeded with alerts unwritable")
	}
	e.clock.Advance(time.Second)
	for i := 0; i < 2; i++ {
		e.b.onVerify(record.VerifyInput{ClientIP: "203.0.113.9"}, record.VerifyResult{Code: record.CodeNotFound})
	}
	s.failing = false
	if err := e.b.flushDetections(e.ctx, s); err != nil {
		t.Fatal(err)
	}
	got := e.alertsOf(record.AlertFailedVerifyBurst)
	if len(got) != 2 || got[1].Count != 5 || got[0].Count != 2 || sumCounts(t, got) != 7 {
		t.Fatalf("alerts after a failed flush: %+v", got)
	}
	if n := strings.Count(strings.Join(e.logTypes(), " "), eventlog.AlertRaised); n != 2 {
		t.Fatalf("%d alert.raised entries, want 2", n)
	}
}
