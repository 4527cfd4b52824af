package backend

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/hashicorp/vault/sdk/logical"
)

// opCountingStorage counts storage operations on alerts.
type opCountingStorage struct {
	logical.Storage
	gets, lists, deletes int
}

func (c *opCountingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if strings.HasPrefix(key, storageAlertPrefix) {
		c.gets++
	}
	return c.Storage.Get(ctx, key)
}

func (c *opCountingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if strings.HasPrefix(prefix, storageAlertPrefix) {
		c.lists++
	}
	return c.Storage.List(ctx, prefix)
}

func (c *opCountingStorage) Delete(ctx context.Context, key string) error {
	if strings.HasPrefix(key, storageAlertPrefix) {
		c.deletes++
	}
	return c.Storage.Delete(ctx, key)
}

func (c *opCountingStorage) reset() { c.gets, c.lists, c.deletes = 0, 0, 0 }

// tickOn runs a governance tick over s.
func (e *testEnv) tickOn(s logical.Storage) {
	e.t.Helper()
	if err := e.b.governanceTick(e.ctx, &logical.Request{Storage: s}); err != nil {
		e.t.Fatalf("governanceTick: %v", err)
	}
}

// raiseAt raises an alert as if at t.
func (e *testEnv) raiseAt(t time.Time, typ string) *record.Alert {
	e.t.Helper()
	a := &record.Alert{Type: typ, Time: t, Message: "test", KeyID: "kid_" + typ}
	if err := e.b.raiseAlert(e.ctx, e.storage, a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// allAlerts returns every stored alert by id.
func (e *testEnv) allAlerts() map[string]*record.Alert {
	e.t.Helper()
	list, err := listAlerts(e.ctx, e.storage, record.AlertFilter{}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*record.Alert{}
	for _, a := range list {
		out[a.ID] = a
	}
	return out
}

// retained reports whether an alert raised at raised is within retention
// at now.
func retained(raised, now time.Time, acknowledged bool) bool {
	if raised.Before(governance.AlertsRetainedFrom(now)) {
		return false
	}
	return !acknowledged || now.Sub(raised) <= governance.AcknowledgedAlertRetention
}

// checkRetention asserts that exactly the alerts within retention are
// stored (raised: every alert ever raised, with whether it was
// acknowledged), and that the log names every pruned one.
func (e *testEnv) checkRetention(raised map[string]bool) {
	e.t.Helper()
	now := e.clock.Now()
	stored := e.allAlerts()
	prunedIDs := map[string]bool{}
	for _, ev := range e.logEventsOf(eventlog.AlertsPruned) {
		for _, id := range strings.Split(ev.Details["alert_ids"], ",") {
			prunedIDs[id] = true
		}
	}
	for id, acked := range raised {
		at, _ := governance.AlertRaisedAt(id)
		_, ok := stored[id]
		switch want := retained(at, now, acked); {
		case want && !ok:
			e.t.Fatalf("alert %s (raised %s, acknowledged %v) pruned too early at %s", id, at, acked, now)
		case !want && ok:
			e.t.Fatalf("alert %s (raised %s, acknowledged %v) still stored at %s", id, at, acked, now)
		case !ok && !prunedIDs[id]:
			e.t.Fatalf("alert %s deleted without an alerts.pruned entry", id)
		}
	}
}

// A sustained guessing attack raises an alert every alert_window for ever,
// so alerts are pruned after their retention (acknowledged ones sooner)
// lest storage and every listing grow without bound, while the log keeps
// every alert.raised entry.
func TestAlertsPrunedAfterRetention(t *testing.T) {
	e := newTestEnv(t)
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"failed_verify_threshold": 3, "alert_window": "1m"})
	raised := map[string]bool{} // id: acknowledged
	const days = 200
	for d := 0; d < days; d++ {
		for i := 0; i < 5; i++ {
			e.verifyCode("ak_prod_notakey", map[string]interface{}{"client_ip": "198.51.100.7"})
		}
		e.tick()
		for _, a := range e.alertsOf(record.AlertFailedVerifyBurst) {
			if _, seen := raised[a.ID]; seen {
				continue
			}
			raised[a.ID] = d%2 == 0
			if d%2 == 0 {
				e.ok(logical.UpdateOperation, "alerts/"+a.ID+"/ack", map[string]interface{}{"note": "known scanner"})
			}
		}
		e.checkRetention(raised)
		e.clock.Advance(record.Day)
	}
	e.tick()
	if len(raised) != days {
		t.Fatalf("%d alerts raised in %d days", len(raised), days)
	}
	if n := len(e.logEventsOf(eventlog.AlertRaised)); n != days {
		t.Fatalf("%d alert.raised entries in the log, want all %d", n, days)
	}
	stored := len(e.allAlerts())
	// Open (odd days) for 180 days, acknowledged (even days) for 90.
	if stored > 180/2+90/2+2 {
		t.Fatalf("%d alerts stored after %d days of one a day", stored, days)
	}
	m := e.ok(logical.ReadOperation, "metrics", nil).Data["open_alerts"].(map[string]int)
	open := 0
	for _, a := range e.allAlerts() {
		if !a.Acknowledged {
			open++
		}
	}
	if m[record.AlertFailedVerifyBurst] != open {
		t.Fatalf("metrics open failed_verify_burst = %d, stored open = %d", m[record.AlertFailedVerifyBurst], open)
	}
}

// Open-alert counts are folded from the lifecycle log, so a metrics scrape
// reads no stored alert and still agrees with the stored alerts as they are raised, acknowledged and
// pruned.
func TestMetricsScrapeReadsNoAlerts(t *testing.T) {
	e := newTestEnv(t)
	cs := &opCountingStorage{Storage: e.storage}
	openOf := func() map[string]int {
		t.Helper()
		cs.reset()
		m, err := e.b.collectMetrics(e.ctx, cs)
		if err != nil {
			t.Fatal(err)
		}
		if cs.gets+cs.lists != 0 {
			t.Fatalf("a metrics scrape read %d alerts and listed them %d times", cs.gets, cs.lists)
		}
		return m.Open
	}
	e.tick() // the first tick counts the (no) stored alerts
	var ids []string
	for i := 0; i < 300; i++ {
		ids = append(ids, e.raiseAt(e.clock.Now().Add(time.Duration(i)*time.Second), record.AlertVerifyBurst).ID)
	}
	e.raiseAt(e.clock.Now(), record.AlertNewAddress)
	if o := openOf(); o[record.AlertVerifyBurst] != 300 || o[record.AlertNewAddress] != 1 || o[record.AlertReviewDue] != 0 {
		t.Fatalf("open = %v", o)
	}
	for _, id := range ids[:100] {
		e.ok(logical.UpdateOperation, "alerts/"+id+"/ack", nil)
	}
	e.ok(logical.UpdateOperation, "alerts/"+ids[0]+"/ack", nil) // again: a no-op
	if o := openOf(); o[record.AlertVerifyBurst] != 200 {
		t.Fatalf("open after 100 acknowledgements = %v", o)
	}
	e.tick()
	e.clock.Advance(governance.OpenAlertRetention + record.Day)
	e.tick()
	if n := len(e.allAlerts()); n != 0 {
		t.Fatalf("%d alerts left past the open retention", n)
	}
	if o := openOf(); o[record.AlertVerifyBurst] != 0 || o[record.AlertNewAddress] != 0 {
		t.Fatalf("open after the retention = %v", o)
	}
	if raw := e.rawState()["open_alert_days"]; len(raw) > 0 && string(raw) != "{}" {
		t.Fatalf("open-alert days past the retention still in the state: %s", raw)
	}
}

// Governance state written before the open-alert counts: the first fold
// counts the stored alerts once, and the log takes over from there.
func TestOpenAlertCountsStartFromStoredAlerts(t *testing.T) {
	e := newTestEnv(t)
	var ids []string
	for i := 0; i < 5; i++ {
		ids = append(ids, e.raiseAt(e.clock.Now(), record.AlertForbiddenIP).ID)
	}
	e.ok(logical.UpdateOperation, "alerts/"+ids[0]+"/ack", nil)
	e.tick()
	raw := e.rawState()
	delete(raw, "open_alert_days")
	delete(raw, "open_alerts_counted")
	e.putRaw(governance.StateKey, raw)
	e.ok(logical.UpdateOperation, "alerts/"+ids[1]+"/ack", nil) // logged after the old state
	open := func() int {
		return e.ok(logical.ReadOperation, "metrics", nil).Data["open_alerts"].(map[string]int)[record.AlertForbiddenIP]
	}
	if n := open(); n != 3 {
		t.Fatalf("open forbidden_ip counted from storage = %d, want 3", n)
	}
	e.tick()
	var st map[string]json.RawMessage = e.rawState()
	if string(st["open_alerts_counted"]) != "true" {
		t.Fatalf("counts not saved: %s", st["open_alerts_counted"])
	}
	e.raiseAt(e.clock.Now(), record.AlertForbiddenIP)
	e.ok(logical.UpdateOperation, "alerts/"+ids[2]+"/ack", nil)
	if n := open(); n != 3 {
		t.Fatalf("open forbidden_ip after one more raised and acknowledged = %d, want 3", n)
	}
}

// Retention costs O(pruned): a tick lists at most once, reads or deletes at
// most its batch, and a tick with nothing due touches no alert (the
// node-local listing's bound: governance's TestRetentionListingBounded).
func TestAlertRetentionCostIsPerPrunedAlert(t *testing.T) {
	e := newTestEnv(t, withGovernance(governance.Options{AlertPruneBatch: 30, AlertListMax: 50}))
	start := e.clock.Now()
	raised := map[string]bool{}
	for i := 0; i < 500; i++ { // one every 14.4 hours over the last 300 days
		a := e.raiseAt(start.Add(-300*record.Day+time.Duration(i)*300*record.Day/500), record.AlertReviewDue)
		raised[a.ID] = i%3 == 0
		if i%3 == 0 {
			e.ok(logical.UpdateOperation, "alerts/"+a.ID+"/ack", nil)
		}
	}
	// The node starts: it counts the stored alerts once and lists them.
	e.tick()
	cs := &opCountingStorage{Storage: e.storage}
	catchUp := func() {
		t.Helper()
		for i := 0; ; i++ {
			if i == 100 {
				t.Fatal("retention never caught up")
			}
			cs.reset()
			e.tickOn(cs)
			// Each alert handled is read (then maybe deleted) or deleted.
			if cs.lists > 1 || cs.gets > 30 || cs.deletes > 30 {
				t.Fatalf("tick %d: %d lists, %d reads, %d deletes", i, cs.lists, cs.gets, cs.deletes)
			}
			if cs.deletes == 0 && cs.gets == 0 {
				return
			}
		}
	}
	catchUp()
	e.checkRetention(raised)
	cs.reset()
	e.tickOn(cs)
	if cs.gets+cs.lists+cs.deletes != 0 {
		t.Fatalf("a tick with nothing due: %d reads, %d lists, %d deletes", cs.gets, cs.lists, cs.deletes)
	}
	for d := 0; d < 200; d += 10 {
		e.clock.Advance(10 * record.Day)
		catchUp()
		e.checkRetention(raised)
	}
	if n := len(e.allAlerts()); n != 0 {
		t.Fatalf("%d alerts left 200 days after the last was raised", n)
	}
}

// A listing with since reads no alert raised before it.
func TestAlertListingSinceReadsOnlyNewer(t *testing.T) {
	e := newTestEnv(t)
	for i := 0; i < 50; i++ {
		e.raiseAt(e.clock.Now().Add(time.Duration(i-50)*time.Hour), record.AlertVerifyBurst)
	}
	cs := &opCountingStorage{Storage: e.storage}
	since := e.clock.Now().Add(-10 * time.Hour)
	list, err := listAlerts(e.ctx, cs, record.AlertFilter{Since: since}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 10 || cs.gets != 10 {
		t.Fatalf("since the last 10 hours: %d alerts, %d read", len(list), cs.gets)
	}
}
