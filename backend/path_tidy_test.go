package backend

import (
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

func TestTidyPurgesNowAndReportsWhatRemains(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	var keys []leased
	for i := 0; i < 3; i++ {
		l := e.issueLeased()
		e.revokeLease(l)
		keys = append(keys, l)
		e.clock.Advance(time.Second)
	}
	alive := e.issueLeased()
	e.issue("acme", "main", "partner", nil)

	// Nothing is due yet.
	d := e.ok(logical.UpdateOperation, "tidy", nil).Data
	if d["purged"] != 0 || d["remaining_due"] != 0 || d["leased_key_retention"] != int64(3600) || d["tracked_leased_keys"] != 4 {
		t.Fatalf("tidy before the retention: %v", d)
	}

	e.clock.Advance(time.Hour)
	resp := e.ok(logical.UpdateOperation, "tidy", map[string]interface{}{"max_keys": 1})
	if resp.Data["purged"] != 1 || resp.Data["remaining_due"] != 2 || len(resp.Warnings) != 1 {
		t.Fatalf("tidy with max_keys=1: %v %v", resp.Data, resp.Warnings)
	}
	resp = e.ok(logical.UpdateOperation, "tidy", nil)
	if resp.Data["purged"] != 2 || resp.Data["remaining_due"] != 0 || len(resp.Warnings) != 0 {
		t.Fatalf("tidy: %v %v", resp.Data, resp.Warnings)
	}
	for _, l := range keys {
		if left := e.storageOf(l); len(left) != 0 {
			t.Fatalf("tidy left %v", left)
		}
	}
	if !e.keyExists("acme", alive.name) || !e.keyExists("acme", "main") {
		t.Fatal("tidy purged a key that is alive or not leased")
	}
	e.checkNoOrphans()

	// A tidy is attributed to its caller in the log.
	evs := e.logEventsOf(eventlog.KeysPurged)
	if len(evs) != 2 || evs[0].Actor.EntityID != "entity-alice" || evs[0].RequestID != "req-tidy" || evs[0].Details["trigger"] != "tidy" {
		t.Fatalf("tidy events: %+v", evs)
	}
	e.logValid()
}

func TestTidyRefusals(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	for _, n := range []int{0, -1, maxTidyKeys + 1} {
		e.userErr(logical.UpdateOperation, "tidy", map[string]interface{}{"max_keys": n}, "max_keys must be between 1 and 100000")
	}
	e.userErr(logical.UpdateOperation, "tidy", map[string]interface{}{"max_keys": "many"}, "max_keys")
}

func TestTidyWithZeroRetentionWarns(t *testing.T) {
	e := newPurgeEnv(t, "0")
	l := e.issueLeased()
	e.revokeLease(l)
	e.clock.Advance(3650 * record.Day)
	resp := e.ok(logical.UpdateOperation, "tidy", nil)
	if resp.Data["purged"] != 0 || resp.Data["leased_key_retention"] != int64(0) || len(resp.Warnings) != 1 || !e.keyExists("acme", l.name) {
		t.Fatalf("tidy with retention 0: %v %v", resp.Data, resp.Warnings)
	}
}

func TestTidyPathHelp(t *testing.T) {
	e := newTestEnv(t)
	resp, err := e.b.HandleRequest(e.ctx, &logical.Request{Operation: logical.HelpOperation, Path: "tidy", Storage: e.storage})
	if err != nil || resp == nil || resp.Data["help"] == nil {
		t.Fatalf("help: %v %v", resp, err)
	}
}
