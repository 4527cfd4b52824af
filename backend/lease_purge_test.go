package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/governance"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scheduler"
	"github.com/apikeys/vault-plugin-secrets-apikeys/internal/promtext"
)

// leased is one leased key issued by a test: the creds/ response (for the
// lease requests), its plaintext and what identifies it in storage.
type leased struct {
	resp   *logical.Response
	issued time.Time
	key    string
	name   string
	keyID  string
	hmac   string
}

// newPurgeEnv is a test env with client acme (external) and role partner
// (ttl 1h, max_ttl 3h), and leased_key_retention set to retention.
func newPurgeEnv(t *testing.T, retention string, opts ...backendOption) *testEnv {
	t.Helper()
	e := newTestEnv(t, opts...)
	e.setupClientRole("acme", "external", "partner", map[string]interface{}{"ttl": "1h", "max_ttl": "3h"})
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"leased_key_retention": retention})
	return e
}

func (e *testEnv) issueLeased() leased {
	e.t.Helper()
	resp := e.credsRead("acme", "partner", nil)
	l := leased{resp: resp, issued: e.clock.Now(), key: resp.Data["key"].(string), name: resp.Data["name"].(string), keyID: resp.Data["key_id"].(string)}
	k, err := e.b.getKey(e.ctx, e.storage, "acme", l.name)
	if err != nil || k == nil {
		e.t.Fatalf("leased key record: %v %v", k, err)
	}
	l.hmac = k.Versions[0].HMAC
	return l
}

// revokeLease does what Vault does when the lease ends or is revoked.
func (e *testEnv) revokeLease(l leased) {
	e.t.Helper()
	r, err := e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RevokeOperation, l.resp, l.issued, 0))
	if err != nil || (r != nil && r.IsError()) {
		e.t.Fatalf("lease revoke: %+v %v", r, err)
	}
}

// purgePass runs one periodic purge pass and fails the test on error.
func (e *testEnv) purgePass() purgeStats {
	e.t.Helper()
	st, err := e.b.runLeasePurge(e.ctx, e.storage, nil, 0)
	if err != nil {
		e.t.Fatalf("purge pass: %v", err)
	}
	return st
}

// storageOf lists the storage keys that belong to a leased key: its record
// and its index entry. Its pointers in the schedules' due index are not
// counted: they go with their bucket, after the key.
func (e *testEnv) storageOf(l leased) []string {
	e.t.Helper()
	var out []string
	for _, sk := range e.storageKeys() {
		if strings.HasPrefix(sk, storageSchedulePrefix) {
			continue
		}
		if sk == keyStorageKey("acme", l.name) || sk == indexStorageKey(l.hmac) || strings.Contains(sk, l.name) {
			out = append(out, sk)
		}
	}
	return out
}

// checkNoOrphans asserts every index entry points at a stored key record
// that holds a version with that HMAC.
func (e *testEnv) checkNoOrphans() {
	e.t.Helper()
	for _, sk := range e.storageKeys() {
		h, ok := strings.CutPrefix(sk, storageIndexPrefix)
		if !ok {
			continue
		}
		ie, err := e.b.getIndex(e.ctx, e.storage, h)
		if err != nil || ie == nil {
			e.t.Fatalf("index %s: %v", h, err)
		}
		k, err := e.b.getKey(e.ctx, e.storage, ie.Client, ie.Name)
		if err != nil || k == nil {
			e.t.Fatalf("orphan index entry %s: its key %s/%s is gone (%v)", h, ie.Client, ie.Name, err)
		}
		if v := k.Version(ie.Version); v == nil || v.HMAC != h {
			e.t.Fatalf("orphan index entry %s for %s/%s version %d", h, ie.Client, ie.Name, ie.Version)
		}
	}
}

// logEventsOf returns the lifecycle-log events of one type.
func (e *testEnv) logEventsOf(typ string) []eventlog.Event {
	e.t.Helper()
	head, err := e.b.log.Head(e.ctx, e.storage)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []eventlog.Event
	for seq := uint64(1); seq <= head.Seq; seq++ {
		rec, err := e.b.log.Entry(e.ctx, e.storage, seq)
		if err != nil {
			e.t.Fatal(err)
		}
		if ev := decodeEvent(e.t, rec); ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// purgedIDs returns the key ids named by keys.purged events, in order.
func (e *testEnv) purgedIDs() []string {
	e.t.Helper()
	var ids []string
	for _, ev := range e.logEventsOf(eventlog.KeysPurged) {
		ids = append(ids, strings.Split(ev.Details["key_ids"], ",")...)
	}
	return ids
}

func (e *testEnv) logValid() {
	e.t.Helper()
	if v := e.ok(logical.ReadOperation, "log/verify", nil); v.Data["valid"] != true {
		e.t.Fatalf("log/verify: %v", v.Data)
	}
}

func (e *testEnv) keyExists(client, name string) bool {
	e.t.Helper()
	k, err := e.b.getKey(e.ctx, e.storage, client, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return k != nil
}

// restart is what Vault does after the plugin process died: a new backend
// over the same storage, initialised, with its startup scan finished.
func (e *testEnv) restart() {
	e.t.Helper()
	b2 := newBackend(e.clock, e.opts...)
	if err := b2.Setup(e.ctx, &logical.BackendConfig{Logger: e.b.logger, System: logical.TestSystemView(), StorageView: e.storage}); err != nil {
		e.t.Fatal(err)
	}
	if err := b2.Initialize(e.ctx, &logical.InitializationRequest{Storage: e.storage}); err != nil {
		e.t.Fatal(err)
	}
	if err := b2.sched.rebuild.Wait(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	e.b = b2
}

func TestLeasePurgeAfterRetentionNotBefore(t *testing.T) {
	e := newPurgeEnv(t, "24h")
	revoked := e.issueLeased()
	expired := e.issueLeased() // its lease is never revoked: it just expires
	managed := e.issue("acme", "main", "partner", nil)
	e.ok(logical.UpdateOperation, "keys/acme/main/revoke", nil)
	e.ok(logical.CreateOperation, "keys/acme/live", map[string]interface{}{"role": "partner"})

	e.clock.Advance(10 * time.Minute)
	e.revokeLease(revoked)
	if rl := e.ok(logical.ReadOperation, "clients/acme/revocations", nil).Data; !strings.Contains(fmt.Sprint(rl["revoked_key_ids"]), revoked.keyID) {
		t.Fatalf("revocation list before the purge does not list the revoked leased key: %v", rl)
	}

	// One second before the retention ends: nothing goes.
	e.clock.Advance(24*time.Hour - time.Second)
	if st := e.purgePass(); st.purged != 0 || st.remaining != 0 {
		t.Fatalf("pass before the retention ended: %+v", st)
	}
	if !e.keyExists("acme", revoked.name) || len(e.storageOf(revoked)) != 2 {
		t.Fatalf("purged before its retention ended: %v", e.storageOf(revoked))
	}

	// Exactly at the end of the retention the revoked key goes, with its
	// index entry and its governance marks (say it had been alerted on);
	// the other one died (expired) later and stays.
	if err := e.storage.Put(e.ctx, &logical.StorageEntry{Key: governance.MarksKey(revoked.keyID), Value: []byte(`{"alerted":"2026-01-01T00:00:00Z"}`)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if st := e.purgePass(); st.purged != 1 || st.remaining != 0 || st.leftover {
		t.Fatalf("pass at the end of the retention: %+v", st)
	}
	if left := e.storageOf(revoked); len(left) != 0 {
		t.Fatalf("storage still holds the purged key: %v", left)
	}
	for _, sk := range e.storageKeys() {
		if strings.Contains(sk, revoked.keyID) {
			t.Fatalf("storage entry %s of the purged key is left", sk)
		}
	}
	if !e.keyExists("acme", expired.name) {
		t.Fatal("a leased key dead for less than the retention was purged")
	}
	if code := e.verifyCode(revoked.key, nil); code != record.CodeNotFound {
		t.Fatalf("verify of a purged key: %q", code)
	}
	inv := e.ok(logical.ReadOperation, "inventory", nil).Data
	if strings.Contains(fmt.Sprint(inv["keys"]), revoked.keyID) || inv["count"] != 3 {
		t.Fatalf("inventory after the purge: %v", inv)
	}
	rl := e.ok(logical.ReadOperation, "clients/acme/revocations", nil).Data
	if ids := fmt.Sprint(rl["revoked_key_ids"]); strings.Contains(ids, revoked.keyID) || rl["count"] != 1 || rl["leased_key_retention"] != int64(86400) {
		t.Fatalf("revocation list after the purge: %v", rl)
	}

	// The log keeps the history and names the purge.
	evs := e.logEventsOf(eventlog.KeysPurged)
	if len(evs) != 1 || evs[0].Details["key_ids"] != revoked.keyID || evs[0].Details["count"] != "1" ||
		evs[0].Actor.Type != actorSystem || evs[0].Details["trigger"] != "periodic" || evs[0].Details["leased_key_retention"] != "24h0m0s" {
		t.Fatalf("purge events: %+v", evs)
	}
	if n := len(e.logEventsOf(eventlog.KeyIssued)); n != 4 {
		t.Fatalf("issuance events after the purge: %d", n)
	}
	e.logValid()

	// A leased key that Vault never revoked is purged a retention after
	// its expiry.
	e.clock.Set(expired.issued.Add(time.Hour + 24*time.Hour))
	if st := e.purgePass(); st.purged != 1 {
		t.Fatalf("pass after the expired key's retention: %+v", st)
	}
	if left := e.storageOf(expired); len(left) != 0 {
		t.Fatalf("storage still holds the expired leased key: %v", left)
	}

	// Keys that are not leased are never purged, revoked or not.
	e.clock.Advance(3650 * record.Day)
	if st := e.purgePass(); st.purged != 0 || st.handled != 0 {
		t.Fatalf("pass over non-leased keys only: %+v", st)
	}
	for _, name := range []string{"main", "live"} {
		if !e.keyExists("acme", name) {
			t.Fatalf("managed key %s was purged", name)
		}
	}
	if code := e.verifyCode(managed, nil); code != record.CodeRevoked {
		t.Fatalf("revoked managed key answers %q, want revoked (its record and index are kept)", code)
	}
	e.checkNoOrphans()
	e.logValid()

	// Metrics: counts of what is stored drop; lifecycle counts do not.
	m := e.ok(logical.ReadOperation, "metrics", nil).Data
	if m["purged_leased_keys_total"] != uint64(2) || m["issued_total"] != uint64(4) || m["revoked_total"] != uint64(2) || m["leased_keys"] != 0 {
		t.Fatalf("metrics after purges: purged %v issued %v revoked %v leased %v", m["purged_leased_keys_total"], m["issued_total"], m["revoked_total"], m["leased_keys"])
	}
	raw := e.ok(logical.ReadOperation, "metrics", map[string]interface{}{"format": "prometheus"}).Data[logical.HTTPRawBody].([]byte)
	samples, err := promtext.Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if got := samples["apikeys_leased_keys_purged_total"]; got != 2 {
		t.Fatalf("apikeys_leased_keys_purged_total = %v", got)
	}
}

// TestLeasePurgeRenewalMovesPurgeTime: a renewed lease moves the key's
// death, and with it the purge.
func TestLeasePurgeRenewalMovesPurgeTime(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	l := e.issueLeased()
	e.clock.Advance(50 * time.Minute)
	if r, err := e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RenewOperation, l.resp, l.issued, 0)); err != nil || r.IsError() {
		t.Fatalf("renew: %+v %v", r, err)
	}
	// Original expiry (1h) + retention (1h) has passed; the renewed expiry
	// (1h50m) + retention has not.
	e.clock.Set(l.issued.Add(2*time.Hour + 49*time.Minute))
	if st := e.purgePass(); st.purged != 0 || !e.keyExists("acme", l.name) {
		t.Fatalf("renewed key purged at its old time: %+v", st)
	}
	e.clock.Set(l.issued.Add(2*time.Hour + 50*time.Minute))
	if st := e.purgePass(); st.purged != 1 || e.keyExists("acme", l.name) {
		t.Fatalf("renewed key not purged at its new time: %+v", st)
	}
}

// TestLeasePurgeStaleQueueNeverTouchesOtherKeys: whatever the queue holds,
// a pass only deletes leased keys that storage says are dead long enough.
func TestLeasePurgeStaleQueueNeverTouchesOtherKeys(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	e.issue("acme", "main", "partner", nil)
	l := e.issueLeased()
	q := e.b.sched.purge
	q.Schedule(queueID("acme", "main"), testStart.Add(-record.Day)) // not leased
	q.Schedule(queueID("acme", l.name), testStart.Add(-record.Day)) // leased but alive
	q.Schedule(queueID("acme", "gone"), testStart.Add(-record.Day)) // no such key
	before := len(e.storageKeys())
	st := e.purgePass()
	if st.purged != 0 || st.handled != 3 || len(e.storageKeys()) != before {
		t.Fatalf("pass over stale queue items: %+v", st)
	}
	if len(e.logEventsOf(eventlog.KeysPurged)) != 0 {
		t.Fatal("a pass that purged nothing logged a purge")
	}
	// The live leased key is queued again at its real expiry.
	if due, ok := q.Due(queueID("acme", l.name)); !ok || !due.Equal(l.issued.Add(time.Hour)) {
		t.Fatalf("live leased key re-queued at %v %v", due, ok)
	}
	if _, ok := q.Due(queueID("acme", "main")); ok {
		t.Fatal("a managed key stayed in the purge queue")
	}
}

// TestLeasePurgeZeroRetentionKeepsForever: 0 means keep.
func TestLeasePurgeZeroRetentionKeepsForever(t *testing.T) {
	e := newPurgeEnv(t, "0")
	l := e.issueLeased()
	e.revokeLease(l)
	e.clock.Advance(3650 * record.Day)
	if st := e.purgePass(); !st.disabled || st.purged != 0 || !e.keyExists("acme", l.name) {
		t.Fatalf("pass with retention 0: %+v", st)
	}
	// Turning the retention on takes effect at the next pass, for keys
	// that died long ago too.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"leased_key_retention": "720h"})
	if st := e.purgePass(); st.purged != 1 || e.keyExists("acme", l.name) {
		t.Fatalf("pass after setting a retention: %+v", st)
	}
}

func TestLeasePurgeBudgetAcrossPasses(t *testing.T) {
	sw := &steppingStopwatch{now: testStart}
	e := newPurgeEnv(t, "1h", withPurgeLimits(scheduler.Limits{Budget: purgeTickBudget, MaxItems: 2}), withStopwatch(sw.read))
	var keys []leased
	for i := 0; i < 5; i++ {
		l := e.issueLeased()
		e.revokeLease(l)
		keys = append(keys, l)
		e.clock.Advance(time.Second)
	}
	e.clock.Advance(time.Hour)
	if st := e.purgePass(); st.purged != 2 || st.remaining != 3 || !st.leftover {
		t.Fatalf("first pass: %+v", st)
	}
	// A time budget works the same way; here it is already used up.
	sw.step = purgeTickBudget
	if st, err := e.b.runLeasePurge(e.ctx, e.storage, nil, 100); err != nil || st.handled != 0 || st.remaining != 3 || !st.leftover {
		t.Fatalf("pass with no time budget: %+v %v", st, err)
	}
	// A pass may be given more keys than the default (tidy's max_keys).
	sw.step = 0
	if st, err := e.b.runLeasePurge(e.ctx, e.storage, nil, 100); err != nil || st.purged != 3 || st.remaining != 0 || st.leftover {
		t.Fatalf("last pass: %+v %v", st, err)
	}
	// Oldest first, one log entry per batch.
	var want []string
	for _, l := range keys {
		want = append(want, l.keyID)
		if e.keyExists("acme", l.name) {
			t.Fatalf("key %s left", l.name)
		}
	}
	if got := e.purgedIDs(); strings.Join(got, ",") != strings.Join(want, ",") || len(e.logEventsOf(eventlog.KeysPurged)) != 2 {
		t.Fatalf("purged ids in the log %v, want %v", got, want)
	}
	e.checkNoOrphans()
}

// TestLeasePurgeBatchesLogEntries: a pass over many keys writes one log
// entry per purgeEventMaxKeys keys, not one per key.
func TestLeasePurgeBatchesLogEntries(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	n := purgeEventMaxKeys + 5
	for i := 0; i < n; i++ {
		e.revokeLease(e.issueLeased())
	}
	e.clock.Advance(time.Hour)
	head, _ := e.b.log.Head(e.ctx, e.storage)
	if st := e.purgePass(); st.purged != n {
		t.Fatalf("pass: %+v", st)
	}
	after, _ := e.b.log.Head(e.ctx, e.storage)
	if after.Seq-head.Seq != 2 || len(e.purgedIDs()) != n {
		t.Fatalf("%d log entries for %d purged keys", after.Seq-head.Seq, n)
	}
	e.logValid()
}

// TestLeasePurgeCostIsPerPurgeableKey: a pass touches storage only for the
// keys it purges, however many keys the mount holds.
func TestLeasePurgeCostIsPerPurgeableKey(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	for i := 0; i < 100; i++ {
		e.issue("acme", fmt.Sprintf("k%03d", i), "partner", nil)
	}
	var dead []leased
	for i := 0; i < 60; i++ {
		l := e.issueLeased()
		if i < 3 {
			e.revokeLease(l)
			dead = append(dead, l)
		}
	}
	counting := &rotCountingStorage{Storage: e.storage}
	e.clock.Advance(59 * time.Minute)
	if st, err := e.b.runLeasePurge(e.ctx, counting, nil, 0); err != nil || st.handled != 0 || counting.ops != 0 {
		t.Fatalf("idle pass: %+v, %d storage operations, %v", st, counting.ops, err)
	}
	e.clock.Advance(time.Minute)
	st, err := e.b.runLeasePurge(e.ctx, counting, nil, 0)
	if err != nil || st.purged != 3 || st.handled != 3 {
		t.Fatalf("pass: %+v %v", st, err)
	}
	// Per key: read, re-read under the lock, look for an interrupted
	// commit (its WAL entry), read and delete its index entry, delete the
	// record, its key id pointer and its governance marks; plus one log
	// append (head and entry).
	if counting.ops > 3*8+4 {
		t.Fatalf("%d storage operations to purge 3 of 160 keys", counting.ops)
	}
}

// TestLeasePurgeCrashSafety injects a failure (as if the plugin died)
// after the log entry and after the index deletes, restarts the backend and
// shows that no index entry is ever left without its record and that the
// next pass finishes the purge.
func TestLeasePurgeCrashSafety(t *testing.T) {
	for _, step := range []string{"purge:logged", "purge:index"} {
		t.Run(step, func(t *testing.T) {
			e := newPurgeEnv(t, "1h")
			a, b := e.issueLeased(), e.issueLeased()
			e.revokeLease(a)
			e.clock.Advance(time.Second) // a is purged first
			e.revokeLease(b)
			e.clock.Advance(time.Hour)
			e.b.commitHook = func(s string) error {
				if s == step {
					return errors.New("simulated crash after " + s)
				}
				return nil
			}
			st, err := e.b.runLeasePurge(e.ctx, e.storage, nil, 0)
			if err == nil || !strings.Contains(err.Error(), "simulated crash") || st.purged != 0 || st.failed != 2 {
				t.Fatalf("pass with a crash: %+v %v", st, err)
			}
			// Whatever the crash left, no index entry points nowhere: at
			// worst a record lost its index entry first.
			e.checkNoOrphans()
			if !e.keyExists("acme", a.name) {
				t.Fatal("the record went before its index entry")
			}
			if step == "purge:index" {
				if _, err := e.b.getIndex(e.ctx, e.storage, a.hmac); err != nil || len(e.storageOf(a)) != 1 {
					t.Fatalf("after a crash between index and record: %v", e.storageOf(a))
				}
				if code := e.verifyCode(a.key, nil); code != record.CodeNotFound {
					t.Fatalf("verify of a half-purged key: %q", code)
				}
			}
			if ids, _ := framework.ListWAL(e.ctx, e.storage); len(ids) != 0 {
				t.Fatalf("the purge left WAL entries: %v", ids)
			}

			// Restart: the startup scan finds the dead keys again and the
			// next pass finishes.
			e.restart()
			if st := e.purgePass(); st.purged != 2 || st.remaining != 0 {
				t.Fatalf("pass after restart: %+v", st)
			}
			for _, l := range []leased{a, b} {
				if left := e.storageOf(l); len(left) != 0 {
					t.Fatalf("left after recovery: %v", left)
				}
			}
			e.checkNoOrphans()
			// The interrupted pass had logged the batch already; the
			// finishing pass logs it again.
			if ids := e.purgedIDs(); len(ids) != 4 || ids[0] != a.keyID || ids[2] != a.keyID {
				t.Fatalf("purged ids in the log: %v", ids)
			}
			e.logValid()
		})
	}
}

// TestLeasePurgeRetriesWithoutRestart: a failed purge stays queued and the
// next pass of the same backend finishes it.
func TestLeasePurgeRetriesWithoutRestart(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	l := e.issueLeased()
	e.revokeLease(l)
	e.clock.Advance(time.Hour)
	e.b.commitHook = func(s string) error {
		if s == "purge:index" {
			return errors.New("storage unavailable")
		}
		return nil
	}
	if st, err := e.b.runLeasePurge(e.ctx, e.storage, nil, 0); err == nil || st.remaining != 1 {
		t.Fatalf("failing pass: %+v %v", st, err)
	}
	e.b.commitHook = nil
	if st := e.purgePass(); st.purged != 1 || st.remaining != 0 {
		t.Fatalf("retry pass: %+v", st)
	}
	if left := e.storageOf(l); len(left) != 0 {
		t.Fatalf("left after retry: %v", left)
	}
	e.checkNoOrphans()
}

// TestLeasePurgeQueueRebuiltAtStartup: keys written before a restart (or
// before this feature existed) are found by the load at startup: those
// purgeable within the horizon at once, the others from their pointers as
// time reaches them.
func TestLeasePurgeQueueRebuiltAtStartup(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	dead, alive := e.issueLeased(), e.issueLeased()
	e.revokeLease(dead)
	e.issue("acme", "main", "partner", nil)
	e.restart()
	q := e.b.sched.purge
	if _, ok := q.Due(queueID("acme", dead.name)); !ok || q.Len() != 1 {
		t.Fatalf("the loaded purge queue holds %d keys, want the dead leased one", q.Len())
	}
	e.clock.Advance(time.Hour)
	if st := e.purgePass(); st.purged != 1 || e.keyExists("acme", dead.name) || !e.keyExists("acme", alive.name) {
		t.Fatalf("pass after restart: %+v", st)
	}
	// The other one's lease ended at +1h: it goes a retention later.
	e.clock.Advance(time.Hour)
	if st := e.purgePass(); st.purged != 1 || e.keyExists("acme", alive.name) {
		t.Fatalf("pass once the other key's retention ended: %+v", st)
	}
}

// TestPeriodicPurgesDeadLeasedKeys: Vault's periodic function runs the
// purge.
func TestPeriodicPurgesDeadLeasedKeys(t *testing.T) {
	e := newPurgeEnv(t, "1h")
	l := e.issueLeased()
	e.revokeLease(l)
	e.clock.Advance(time.Hour)
	if err := e.b.periodic(context.Background(), &logical.Request{Storage: e.storage}); err != nil {
		t.Fatal(err)
	}
	if e.keyExists("acme", l.name) {
		t.Fatal("the periodic function did not purge the dead leased key")
	}
}

func TestLeasedKeyRetentionConfig(t *testing.T) {
	e := newTestEnv(t)
	if got := e.ok(logical.ReadOperation, "config", nil).Data["leased_key_retention"]; got != int64(7*86400) {
		t.Fatalf("default leased_key_retention = %v", got)
	}
	for _, tc := range []struct {
		value interface{}
		want  string
	}{
		{"-1h", "leased_key_retention"}, // the framework refuses negative durations itself
		{"87601h", "leased_key_retention must be 0 (keep dead leased keys forever) or between 1s and"},
		{"soon", "leased_key_retention"},
	} {
		e.userErr(logical.UpdateOperation, "config", map[string]interface{}{"leased_key_retention": tc.value}, tc.want)
	}
	if got := e.ok(logical.ReadOperation, "config", nil).Data["leased_key_retention"]; got != int64(7*86400) {
		t.Fatalf("a refused write changed leased_key_retention to %v", got)
	}
	// 0 is kept as 0 (keep forever), not read back as the default.
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"leased_key_retention": 0})
	e.b.cache.invalidate(storageConfig)
	if got := e.ok(logical.ReadOperation, "config", nil).Data["leased_key_retention"]; got != int64(0) {
		t.Fatalf("leased_key_retention after writing 0 = %v", got)
	}
	pol := e.ok(logical.ReadOperation, "policy", nil).Data["leased_keys"].(map[string]interface{})
	if pol["leased_key_retention"] != int64(0) || !strings.Contains(pol["retention"].(string), "kept forever") {
		t.Fatalf("policy leased_keys = %v", pol)
	}
	e.ok(logical.UpdateOperation, "config", map[string]interface{}{"leased_key_retention": "48h"})
	pol = e.ok(logical.ReadOperation, "policy", nil).Data["leased_keys"].(map[string]interface{})
	if pol["leased_key_retention"] != int64(48*3600) || !strings.Contains(pol["retention"].(string), "purged") {
		t.Fatalf("policy leased_keys = %v", pol)
	}
	// Deleting the config restores the default.
	e.ok(logical.DeleteOperation, "config", nil)
	if got := e.ok(logical.ReadOperation, "config", nil).Data["leased_key_retention"]; got != int64(7*86400) {
		t.Fatalf("leased_key_retention after config delete = %v", got)
	}
}

// A lease revocation cut off after its key write, then the purge of the dead
// key before Vault's WAL rollback (2m) reaches the entry: the purge finishes
// the interrupted change first, so its key.revoked entry is logged once.
func TestLeasePurgeFinishesInterruptedCommit(t *testing.T) {
	e := newPurgeEnv(t, "1s")
	l := e.issueLeased()
	before := len(e.logEventsOf(eventlog.KeyRevoked))
	e.b.commitHook = func(step string) error {
		if step == "key" {
			return errors.New("simulated crash after key")
		}
		return nil
	}
	if _, err := e.b.HandleRequest(e.ctx, e.leaseRequest(logical.RevokeOperation, l.resp, l.issued, 0)); err == nil {
		t.Fatal("the lease revocation did not fail at the crash")
	}
	e.b.commitHook = nil
	e.restart()
	e.clock.Advance(time.Minute)
	if st := e.purgePass(); st.purged != 1 {
		t.Fatalf("purge pass: %+v", st)
	}
	if ids, _ := framework.ListWAL(e.ctx, e.storage); len(ids) != 0 {
		t.Fatalf("WAL entries left after the purge: %v", ids)
	}
	if after := len(e.logEventsOf(eventlog.KeyRevoked)); after != before+1 {
		t.Fatalf("key.revoked entries: %d before, %d after; want one more", before, after)
	}
	if res, err := e.b.log.Verify(e.ctx, e.storage); err != nil || !res.Valid {
		t.Fatalf("log/verify: %+v %v", res, err)
	}
}
