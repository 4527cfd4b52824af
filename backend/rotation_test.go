package backend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/eventlog"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/record"
	"github.com/apikeys/vault-plugin-secrets-apikeys/backend/scheduler"
	"github.com/hashicorp/vault/sdk/logical"
)

// rotEnv is a test backend whose adoption source (when a version was last
// verified) is a map the test fills in.
type rotEnv struct {
	*testEnv
	seen map[string]time.Time
	// opts built the backend; a restart builds the next one with them.
	opts []backendOption
}

func newRotEnv(t *testing.T, opts ...backendOption) *rotEnv {
	t.Helper()
	r := &rotEnv{seen: map[string]time.Time{}}
	r.opts = append([]backendOption{withAdoption(func(k *record.Key, v int) time.Time {
		return r.seen[fmt.Sprintf("%s/%s/%d", k.Client, k.Name, v)]
	})}, opts...)
	r.testEnv = newTestEnv(t, r.opts...)
	return r
}

// verified records a successful verify of a version at the current time.
func (r *rotEnv) verified(client, name string, version int) {
	r.seen[fmt.Sprintf("%s/%s/%d", client, name, version)] = r.clock.Now()
}

func (r *rotEnv) tick() tickStats {
	r.t.Helper()
	st, err := r.b.runRotationTick(r.ctx, r.storage)
	if err != nil {
		r.t.Fatalf("tick: %v", err)
	}
	return st
}

// key reads a key record that must exist.
func (e *testEnv) key(client, name string) *record.Key {
	e.t.Helper()
	k, err := e.b.getKey(e.ctx, e.storage, client, name)
	if err != nil || k == nil {
		e.t.Fatalf("key %s/%s: %v %v", client, name, k, err)
	}
	return k
}

func (r *rotEnv) issue(client, name, role string) string {
	r.t.Helper()
	resp := r.ok(logical.CreateOperation, "keys/"+client+"/"+name, map[string]interface{}{"role": role})
	return resp.Data["key"].(string)
}

// events returns the lifecycle-log events of the given types (all if none).
func (r *rotEnv) events(types ...string) []eventlog.Event {
	r.t.Helper()
	head, err := r.b.log.Head(r.ctx, r.storage)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []eventlog.Event
	for seq := uint64(1); seq <= head.Seq; seq++ {
		rec, err := r.b.log.Entry(r.ctx, r.storage, seq)
		if err != nil || rec == nil {
			r.t.Fatalf("log entry %d: %v", seq, err)
		}
		var ev eventlog.Event
		if err := json.Unmarshal(rec.Event, &ev); err != nil {
			r.t.Fatal(err)
		}
		match := len(types) == 0
		for _, typ := range types {
			match = match || ev.Type == typ
		}
		if match {
			out = append(out, ev)
		}
	}
	return out
}

// states renders a key's version states, e.g. "1:previous 2:active".
func states(k *record.Key) string {
	out := ""
	for i, v := range k.Versions {
		if i > 0 {
			out += " "
		}
		out += fmt.Sprintf("%d:%s", v.Version, v.State)
	}
	return out
}

func (r *rotEnv) wantStates(client, name, want string) *record.Key {
	r.t.Helper()
	k := r.key(client, name)
	if got := states(k); got != want {
		r.t.Fatalf("at %v: versions %q, want %q", r.clock.Now().Sub(testStart), got, want)
	}
	return k
}

func TestRotationByPeriod(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	r.issue("svc", "main", "r")

	r.clock.Advance(59 * time.Minute)
	if st := r.tick(); st.handled != 0 {
		t.Fatalf("tick before due handled %d keys", st.handled)
	}
	r.wantStates("svc", "main", "1:active")

	r.clock.Advance(time.Minute)
	if st := r.tick(); st.rotated != 1 {
		t.Fatalf("tick at due: %+v", st)
	}
	k := r.wantStates("svc", "main", "1:previous 2:active")
	now := testStart.Add(time.Hour)
	if !k.Versions[0].GraceEndsAt.Equal(now.Add(10*time.Minute)) || !k.NextRotationAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("grace ends %v, next rotation %v", k.Versions[0].GraceEndsAt, k.NextRotationAt)
	}
	evs := r.events(eventlog.KeyRotated)
	if len(evs) != 1 || evs[0].Actor.Type != actorSystem || evs[0].Version != 2 || evs[0].RequestID != "" || evs[0].Client != "svc" {
		t.Fatalf("rotation events = %+v", evs)
	}
	// The next rotation follows one period later, not earlier.
	r.clock.Advance(59 * time.Minute)
	r.tick()
	r.wantStates("svc", "main", "1:retired 2:active")
	r.clock.Advance(time.Minute)
	r.tick()
	r.wantStates("svc", "main", "1:retired 2:previous 3:active")
}

func TestRotationByCronSchedule(t *testing.T) {
	r := newRotEnv(t)
	// testStart is Friday 2026-11-27 12:00 UTC.
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_schedule": "0 3 * * *", "grace_period": "1h"})
	r.issue("svc", "main", "r")
	first := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)
	if k := r.key("svc", "main"); !k.NextRotationAt.Equal(first) {
		t.Fatalf("next rotation %v, want %v", k.NextRotationAt, first)
	}
	r.clock.Set(first.Add(-time.Second))
	r.tick()
	r.wantStates("svc", "main", "1:active")
	r.clock.Set(first.Add(30 * time.Second))
	r.tick()
	k := r.wantStates("svc", "main", "1:previous 2:active")
	if want := first.Add(24 * time.Hour); !k.NextRotationAt.Equal(want) {
		t.Fatalf("next rotation %v, want %v", k.NextRotationAt, want)
	}
}

func TestRotationMissedWindowWaitsForNextScheduledTime(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{
		"rotation_schedule": "0 3 * * *", "rotation_window": "1h", "grace_period": "1h",
	})
	r.issue("svc", "main", "r")
	first := time.Date(2026, 11, 28, 3, 0, 0, 0, time.UTC)

	// Vault was down from before 03:00 until 04:30: the window is missed.
	r.clock.Set(first.Add(90 * time.Minute))
	st := r.tick()
	if st.rotated != 0 || st.handled != 1 {
		t.Fatalf("tick after missed window: %+v", st)
	}
	k := r.wantStates("svc", "main", "1:active")
	next := first.Add(24 * time.Hour)
	if !k.NextRotationAt.Equal(next) {
		t.Fatalf("next rotation %v, want %v", k.NextRotationAt, next)
	}
	alerts := r.events(eventlog.AlertRaised)
	if len(alerts) != 1 || alerts[0].Details["type"] != record.AlertRotationOverdue || alerts[0].Actor.Type != actorSystem {
		t.Fatalf("alerts = %+v", alerts)
	}
	// Nothing happens in between, and inside the next window it rotates.
	r.clock.Set(next.Add(-time.Minute))
	if st := r.tick(); st.handled != 0 {
		t.Fatalf("tick before next window handled %+v", st)
	}
	r.clock.Set(next.Add(59 * time.Minute))
	r.tick()
	r.wantStates("svc", "main", "1:previous 2:active")
}

// A role stored (before the minimum was enforced) with a rotation_window
// shorter than the tick period: with ticks late in the minute every window
// would be missed and the key would never rotate; the window is applied as
// schedule.MinWindow instead.
func TestRotationStoredWindowBelowMinimumStillRotates(t *testing.T) {
	r := newRotEnv(t)
	r.ok(logical.CreateOperation, "clients/svc", map[string]interface{}{"owner": "o"})
	grace := 10 * time.Minute
	r.storeRole(&record.Role{Name: "r", Scopes: []string{"a:b"}, Environment: "prod",
		RotationSchedule: "0 * * * *", RotationWindow: 30 * time.Second, GracePeriod: &grace})
	r.issue("svc", "k", "r")
	r.clock.Advance(45 * time.Second) // ticks run at :45 of every minute
	for i := 0; i < 60; i++ {
		r.clock.Advance(time.Minute)
		r.tick()
	}
	r.wantStates("svc", "k", "1:previous 2:active")
	if n := len(r.alertsOf(record.AlertRotationOverdue)); n != 0 {
		t.Fatalf("%d rotation_overdue alerts", n)
	}
}

func TestRotationGraceRetiresPreviousVersion(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "24h", "grace_period": "1h"})
	r.issue("svc", "main", "r")
	r.ok(logical.UpdateOperation, "keys/svc/main/rotate", nil)
	k := r.wantStates("svc", "main", "1:previous 2:active")
	if !versionAccepted(k.Versions[0], r.clock.Now(), false) {
		t.Fatal("previous version not accepted during grace")
	}

	// The adoption decision is taken a little early; without a reason to
	// wait it changes nothing.
	r.clock.Advance(58 * time.Minute)
	if st := r.tick(); st.handled != 1 || st.retired != 0 {
		t.Fatalf("lookahead tick: %+v", st)
	}
	r.wantStates("svc", "main", "1:previous 2:active")
	r.clock.Advance(2 * time.Minute)
	if st := r.tick(); st.retired != 1 {
		t.Fatalf("tick at grace end: %+v", st)
	}
	k = r.wantStates("svc", "main", "1:retired 2:active")
	if k.Versions[0].Secret != "" || !k.Versions[0].RetiredAt.Equal(r.clock.Now()) {
		t.Fatal("retired version keeps its secret or has no retirement time")
	}
	evs := r.events(eventlog.KeyRetired)
	if len(evs) != 1 || evs[0].Version != 1 || evs[0].Actor.Type != actorSystem {
		t.Fatalf("retirement events = %+v", evs)
	}
	// Next due is the rotation, nothing in between.
	r.clock.Advance(22 * time.Hour)
	if st := r.tick(); st.handled != 0 {
		t.Fatalf("idle tick handled %+v", st)
	}
}

func TestRotationAdoptionWaitsUpToMaxGrace(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{
		"rotation_period": "720h", "grace_period": "1h", "max_grace_period": "4h",
	})
	r.issue("svc", "main", "r")
	r.verified("svc", "main", 1)
	r.ok(logical.UpdateOperation, "keys/svc/main/rotate", nil)
	rotatedAt := r.clock.Now()
	// The client keeps using version 1; version 2 is never verified.
	r.clock.Advance(30 * time.Minute)
	r.verified("svc", "main", 1)

	// Decided before the grace ends, so version 1 is never rejected.
	r.clock.Set(rotatedAt.Add(58 * time.Minute))
	if st := r.tick(); st.deferred != 1 {
		t.Fatalf("tick near grace end: %+v", st)
	}
	k := r.wantStates("svc", "main", "1:previous 2:active")
	if want := rotatedAt.Add(2 * time.Hour); !k.Versions[0].GraceEndsAt.Equal(want) {
		t.Fatalf("grace extended to %v, want %v", k.Versions[0].GraceEndsAt, want)
	}
	waits, alerts := r.events(eventlog.KeyRetirementDeferred), r.events(eventlog.AlertRaised)
	if len(waits) != 1 || waits[0].Version != 1 || waits[0].Actor.Type != actorSystem {
		t.Fatalf("retirement_deferred events = %+v", waits)
	}
	if len(alerts) != 1 || alerts[0].Details["type"] != "rotation_not_adopted" || alerts[0].Version != 2 {
		t.Fatalf("alerts = %+v", alerts)
	}
	if n := countPrefix(r.storageKeys(), storageAlertPrefix); n != 1 {
		t.Fatalf("%d stored alerts, want 1 (listed at alerts/)", n)
	}

	// Still not adopted: the grace keeps extending up to activation+4h,
	// without repeating the alert.
	for i := 0; i < 10; i++ {
		r.clock.Advance(time.Hour)
		r.verified("svc", "main", 1)
		r.tick()
		k = r.key("svc", "main")
		if end := k.Versions[0].GraceEndsAt; end.After(rotatedAt.Add(4 * time.Hour)) {
			t.Fatalf("grace extended past max_grace_period: %v", end)
		}
		if k.Versions[0].State == record.StateRetired {
			break
		}
		if !versionAccepted(k.Versions[0], r.clock.Now(), false) {
			t.Fatalf("version 1 rejected at +%v while waiting for adoption", r.clock.Now().Sub(rotatedAt))
		}
	}
	k = r.wantStates("svc", "main", "1:retired 2:active")
	if got := k.Versions[0].RetiredAt.Sub(rotatedAt); got < 4*time.Hour || got > 5*time.Hour {
		t.Fatalf("retired %v after rotation, want at max_grace_period (4h, next tick)", got)
	}
	if n := len(r.events(eventlog.AlertRaised)) + len(r.events(eventlog.KeyRetirementDeferred)); n != 2 {
		t.Fatalf("alert logged more than once per rotation (%d events)", n)
	}
}

func TestRotationAdoptionEndsWaitOnceNewVersionIsUsed(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{
		"rotation_period": "720h", "grace_period": "1h", "max_grace_period": "24h",
	})
	r.issue("svc", "main", "r")
	r.ok(logical.UpdateOperation, "keys/svc/main/rotate", nil)
	r.clock.Advance(10 * time.Minute)
	r.verified("svc", "main", 1)
	r.clock.Advance(48 * time.Minute) // inside the lookahead before grace ends
	r.tick()
	k := r.wantStates("svc", "main", "1:previous 2:active")
	extended := k.Versions[0].GraceEndsAt
	// The client switches to version 2: at the next check version 1 retires
	// instead of waiting for the full max_grace_period.
	r.clock.Advance(5 * time.Minute)
	r.verified("svc", "main", 2)
	r.clock.Set(extended)
	r.tick()
	r.wantStates("svc", "main", "1:retired 2:active")
}

func TestRotationNoWaitWhenPreviousVersionUnused(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{
		"rotation_period": "720h", "grace_period": "1h", "max_grace_period": "24h",
	})
	r.issue("svc", "main", "r")
	r.verified("svc", "main", 1) // used before the rotation only
	r.clock.Advance(time.Minute)
	r.ok(logical.UpdateOperation, "keys/svc/main/rotate", nil)
	r.clock.Advance(time.Hour)
	if st := r.tick(); st.retired != 1 || st.deferred != 0 {
		t.Fatalf("tick: %+v", st)
	}
	r.wantStates("svc", "main", "1:retired 2:active")
	if n := len(r.events(eventlog.AlertRaised)); n != 0 {
		t.Fatalf("%d alerts for a rotation nobody is waiting on", n)
	}
}

func TestRotationHardExpiry(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{
		"rotation_period": "1h", "grace_period": "30m", "key_lifetime": "150m",
	})
	r.issue("svc", "main", "r")
	r.clock.Advance(time.Hour)
	r.tick()
	r.clock.Advance(time.Hour)
	r.tick()
	r.wantStates("svc", "main", "1:retired 2:previous 3:active")
	last := r.ok(logical.ReadOperation, "keys/svc/main", nil).Data["key"].(string)

	// At 2h30 the key expires: no rotation, grace cut, expiry logged once.
	r.clock.Advance(30 * time.Minute)
	if st := r.tick(); st.expired != 1 || st.rotated != 0 {
		t.Fatalf("expiry tick: %+v", st)
	}
	k := r.wantStates("svc", "main", "1:retired 2:retired 3:active")
	if k.State(r.clock.Now()) != record.StateExpired || !k.NextRotationAt.IsZero() {
		t.Fatalf("state %s, next rotation %v", k.State(r.clock.Now()), k.NextRotationAt)
	}
	evs := r.events(eventlog.KeyExpired)
	if len(evs) != 1 || evs[0].Actor.Type != actorSystem || evs[0].Version != 3 {
		t.Fatalf("expiry events = %+v", evs)
	}
	if _, ok := r.b.sched.rotation.Due(queueID("svc", "main")); ok {
		t.Fatal("expired key is still scheduled")
	}
	read := r.ok(logical.ReadOperation, "keys/svc/main", nil)
	if read.Data["ttl"] != int64(0) || read.Data["state"] != record.StateExpired {
		t.Fatalf("expired key read: ttl %v state %v", read.Data["ttl"], read.Data["state"])
	}
	for _, v := range k.Versions {
		if v.Secret != "" {
			t.Fatalf("expired key keeps the plaintext of version %d", v.Version)
		}
	}
	if res, err := r.b.verifyKey(r.ctx, r.storage, record.VerifyInput{Key: last}); err != nil || res.Active || res.Code != record.CodeExpired {
		t.Fatalf("verify of an expired key: active=%v code=%s err=%v", res.Active, res.Code, err)
	}
	// Later ticks leave it alone, even from a stale queue entry.
	r.b.sched.rotation.Schedule(queueID("svc", "main"), r.clock.Now())
	r.clock.Advance(3 * time.Hour)
	r.tick()
	if n := len(r.events(eventlog.KeyExpired)); n != 1 {
		t.Fatalf("expiry logged %d times", n)
	}
	r.wantStates("svc", "main", "1:retired 2:retired 3:active")
}

func TestRotationSkipsRevokedAndStaleEntries(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	r.issue("svc", "a", "r")
	r.issue("svc", "b", "r")
	r.ok(logical.UpdateOperation, "keys/svc/a/revoke", map[string]interface{}{"reason": "test"})
	if _, ok := r.b.sched.rotation.Due(queueID("svc", "a")); ok {
		t.Fatal("revoked key still scheduled")
	}
	// A stale entry (e.g. from a rebuild racing the revocation) and an
	// entry for a key that does not exist are harmless.
	r.b.sched.rotation.Schedule(queueID("svc", "a"), testStart)
	r.b.sched.rotation.Schedule(queueID("svc", "ghost"), testStart)
	// A stale early entry for a live key does nothing but re-schedule it.
	r.b.sched.rotation.Schedule(queueID("svc", "b"), testStart)
	before := len(r.events())
	st := r.tick()
	if st.handled != 3 || st.rotated != 0 || st.failed != 0 {
		t.Fatalf("tick: %+v", st)
	}
	if len(r.events()) != before {
		t.Fatal("stale entries caused log events")
	}
	if due, ok := r.b.sched.rotation.Due(queueID("svc", "b")); !ok || !due.Equal(testStart.Add(time.Hour)) {
		t.Fatalf("key b re-scheduled at %v %v", due, ok)
	}
	r.clock.Advance(time.Hour)
	r.tick()
	r.wantStates("svc", "a", "1:revoked")
	r.wantStates("svc", "b", "1:previous 2:active")
}

func TestRotationBudgetLeavesRestForNextTick(t *testing.T) {
	sw := &steppingStopwatch{now: testStart}
	r := newRotEnv(t, withRotationLimits(scheduler.Limits{Budget: tickBudget, MaxItems: 2}), withStopwatch(sw.read))
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	for i := 0; i < 5; i++ {
		r.issue("svc", fmt.Sprintf("k%d", i), "r")
	}
	r.clock.Advance(time.Hour)
	st := r.tick()
	if st.rotated != 2 || !st.leftover {
		t.Fatalf("first tick: %+v", st)
	}
	// A time budget works the same way; here it is already used up.
	sw.step = tickBudget
	if st := r.tick(); st.handled != 0 || !st.leftover {
		t.Fatalf("tick with no time budget: %+v", st)
	}
	sw.step = 0
	if st := r.tick(); st.rotated != 2 || !st.leftover {
		t.Fatalf("second tick: %+v", st)
	}
	if st := r.tick(); st.rotated != 1 || st.leftover {
		t.Fatalf("third tick: %+v", st)
	}
	for i := 0; i < 5; i++ {
		r.wantStates("svc", fmt.Sprintf("k%d", i), "1:previous 2:active")
	}
}

func TestRotationRebuildsScheduleFromStorage(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	r.issue("svc", "a", "r")
	r.issue("svc", "b", "r")
	r.ok(logical.UpdateOperation, "keys/svc/b/revoke", nil)

	// A new backend on the same storage (a restart) starts with an empty
	// queue and rebuilds it in the background.
	b2 := newBackend(r.clock)
	if err := b2.Setup(r.ctx, &logical.BackendConfig{Logger: r.b.logger, System: logical.TestSystemView(), StorageView: r.storage}); err != nil {
		t.Fatal(err)
	}
	if err := b2.Initialize(r.ctx, &logical.InitializationRequest{Storage: r.storage}); err != nil {
		t.Fatal(err)
	}
	if err := b2.sched.rebuild.Wait(r.ctx); err != nil {
		t.Fatal(err)
	}
	q := b2.sched.rotation
	if _, ok := q.Due(queueID("svc", "a")); !ok {
		t.Fatalf("the loaded queue lacks the managed key (%d queued)", q.Len())
	}
	r.clock.Advance(time.Hour)
	if st, err := b2.runRotationTick(r.ctx, r.storage); err != nil || st.rotated != 1 {
		t.Fatalf("tick after restart: %+v %v", st, err)
	}
	r.wantStates("svc", "a", "1:previous 2:active")
	// The revoked key's pointer from its issuance may have queued it: the
	// tick re-read it and left it alone.
	if k := r.key("svc", "b"); !k.Revoked || k.LatestVersion() != 1 {
		t.Fatalf("revoked key after the tick: %s", states(k))
	}
	if _, ok := q.Due(queueID("svc", "b")); ok {
		t.Fatal("the revoked key is still queued after the tick")
	}
}

// TestRotationTickCostIsPerDueKey shows a tick touches storage only for due
// keys: none when nothing is due, however many keys exist.
func TestRotationTickCostIsPerDueKey(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	for i := 0; i < 200; i++ {
		r.issue("svc", fmt.Sprintf("k%03d", i), "r")
		r.clock.Advance(time.Second)
	}
	counting := &rotCountingStorage{Storage: r.storage}
	r.clock.Set(testStart.Add(59 * time.Minute))
	if st, err := r.b.runRotationTick(r.ctx, counting); err != nil || st.handled != 0 || counting.ops != 0 {
		t.Fatalf("idle tick: %+v, %d storage operations, %v", st, counting.ops, err)
	}
	// Three keys are due: the work is for those three only.
	r.clock.Set(testStart.Add(time.Hour + 2*time.Second))
	st, err := r.b.runRotationTick(r.ctx, counting)
	if err != nil || st.handled != 3 || st.rotated != 3 {
		t.Fatalf("tick: %+v %v", st, err)
	}
	if counting.ops > 3*40 {
		t.Fatalf("%d storage operations to rotate 3 of 200 keys", counting.ops)
	}
}

// rotCountingStorage counts storage operations; a commit writes its
// schedule pointers alongside its other operations, so it counts under a
// lock.
type rotCountingStorage struct {
	logical.Storage
	mu  sync.Mutex
	ops int
}

func (c *rotCountingStorage) count() {
	c.mu.Lock()
	c.ops++
	c.mu.Unlock()
}

func (c *rotCountingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	c.count()
	return c.Storage.Get(ctx, key)
}

func (c *rotCountingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	c.count()
	return c.Storage.Put(ctx, e)
}

func (c *rotCountingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	c.count()
	return c.Storage.List(ctx, prefix)
}

func (c *rotCountingStorage) Delete(ctx context.Context, key string) error {
	c.count()
	return c.Storage.Delete(ctx, key)
}

// TestKeyReadAgentContract: a managed key read carries the integer ttl
// (seconds to the next rotation) and rotation_period Vault Agent uses to
// re-fetch right after a rotation.
func TestKeyReadAgentContract(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	first := r.issue("svc", "main", "r")
	r.clock.Advance(52*time.Minute + 500*time.Millisecond)
	read := r.ok(logical.ReadOperation, "keys/svc/main", nil)
	// 7m30s to the next rotation, within the 10m grace less its quarter.
	if read.Data["ttl"] != int64(7*60+30) || read.Data["rotation_period"] != int64(3600) {
		t.Fatalf("ttl %#v rotation_period %#v", read.Data["ttl"], read.Data["rotation_period"])
	}
	if read.Data["key"] != first {
		t.Fatal("read did not return the current key")
	}
	// metadata must not be a JSON object: Agent would take the read for a
	// deleted KV v2 secret (see record/agent_ttl.go).
	r.ok(logical.UpdateOperation, "keys/svc/main", map[string]interface{}{"metadata": []string{"team=pay", "app=shop"}})
	md := r.ok(logical.ReadOperation, "keys/svc/main", nil).Data["metadata"]
	if got, ok := md.([]string); !ok || fmt.Sprint(got) != "[app=shop team=pay]" {
		t.Fatalf("metadata = %#v, want sorted key=value list", md)
	}
	// When ttl runs out the scheduled rotation has happened (the tick at
	// the due time) and the next read returns the new key and a fresh ttl.
	r.clock.Set(testStart.Add(time.Hour))
	r.tick()
	read = r.ok(logical.ReadOperation, "keys/svc/main", nil)
	if read.Data["key"] == first || read.Data["version"] != 2 || read.Data["ttl"] != int64(450) {
		t.Fatalf("after rotation: version %v ttl %v new key %v", read.Data["version"], read.Data["ttl"], read.Data["key"] != first)
	}
}

func TestDueAt(t *testing.T) {
	t0 := testStart
	active := func(at time.Time) *record.KeyVersion {
		return &record.KeyVersion{Version: 2, State: record.StateActive, ActivatedAt: at}
	}
	prev := func(end time.Time) *record.KeyVersion {
		return &record.KeyVersion{Version: 1, State: record.StatePrevious, GraceEndsAt: end}
	}
	cases := []struct {
		name string
		k    *record.Key
		now  time.Time
		want time.Time
	}{
		{"next rotation", &record.Key{NextRotationAt: t0.Add(time.Hour), Versions: []*record.KeyVersion{active(t0)}}, t0, t0.Add(time.Hour)},
		{"expiry first", &record.Key{NextRotationAt: t0.Add(time.Hour), ExpiresAt: t0.Add(time.Minute), Versions: []*record.KeyVersion{active(t0)}}, t0, t0.Add(time.Minute)},
		{"grace end minus lookahead", &record.Key{NextRotationAt: t0.Add(24 * time.Hour), Versions: []*record.KeyVersion{prev(t0.Add(time.Hour)), active(t0)}}, t0, t0.Add(time.Hour - record.AdoptionLookahead)},
		{"grace end once past lookahead", &record.Key{NextRotationAt: t0.Add(24 * time.Hour), Versions: []*record.KeyVersion{prev(t0.Add(time.Hour)), active(t0)}}, t0.Add(59 * time.Minute), t0.Add(time.Hour)},
		{"short grace: half of it", &record.Key{NextRotationAt: t0.Add(time.Hour), Versions: []*record.KeyVersion{prev(t0.Add(30 * time.Second)), active(t0)}}, t0, t0.Add(15 * time.Second)},
		{"revoked", &record.Key{Revoked: true, NextRotationAt: t0}, t0, time.Time{}},
		{"leased", &record.Key{Leased: true, ExpiresAt: t0}, t0, time.Time{}},
		{"expiry handled", &record.Key{ExpiresAt: t0, Versions: []*record.KeyVersion{active(t0)}}, t0.Add(time.Hour), time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := record.DueAt(tc.k, tc.now); !got.Equal(tc.want) {
				t.Fatalf("record.DueAt = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRotationAdoptionUsesVerifyHistory runs adoption-aware retirement on
// the real adoption source: what verify recorded per version.
func TestRotationAdoptionUsesVerifyHistory(t *testing.T) {
	e := newTestEnv(t)
	r := &rotEnv{testEnv: e, seen: nil}
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{
		"rotation_period": "720h", "grace_period": "1h", "max_grace_period": "24h",
	})
	old := r.issue("svc", "main", "r")
	r.ok(logical.UpdateOperation, "keys/svc/main/rotate", nil)
	cur := r.ok(logical.ReadOperation, "keys/svc/main", nil).Data["key"].(string)
	verify := func(key string) {
		t.Helper()
		if res, err := r.b.verifyKey(r.ctx, r.storage, record.VerifyInput{Key: key}); err != nil || !res.Active {
			t.Fatalf("verify: %v %v", res.Code, err)
		}
	}
	r.clock.Advance(10 * time.Minute)
	verify(old) // the client still uses the old key
	r.clock.Advance(49 * time.Minute)
	if st := r.tick(); st.deferred != 1 {
		t.Fatalf("tick at grace end: %+v", st)
	}
	k := r.wantStates("svc", "main", "1:previous 2:active")
	r.clock.Set(k.Versions[0].GraceEndsAt.Add(-time.Minute))
	verify(old)
	verify(cur) // now the client has switched
	r.clock.Set(k.Versions[0].GraceEndsAt)
	r.tick()
	r.wantStates("svc", "main", "1:retired 2:active")
	if alerts := r.events(eventlog.AlertRaised); len(alerts) != 1 || alerts[0].Details["type"] != "rotation_not_adopted" {
		t.Fatalf("alerts = %+v", alerts)
	}
}

// TestRotationTickDuringRebuildAndChanges runs ticks while the schedule is
// still being rebuilt and while keys are rotated and revoked through the
// API: every due key rotates exactly once and nothing races (-race).
func TestRotationTickDuringRebuildAndChanges(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "1h", "grace_period": "10m"})
	const n = 60
	for i := 0; i < n; i++ {
		r.issue("svc", fmt.Sprintf("k%02d", i), "r")
	}
	r.clock.Advance(time.Hour)
	b2 := newBackend(r.clock)
	if err := b2.Setup(r.ctx, &logical.BackendConfig{Logger: r.b.logger, System: logical.TestSystemView(), StorageView: r.storage}); err != nil {
		t.Fatal(err)
	}
	r.b = b2
	if err := b2.initRotation(r.ctx, r.storage); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() {
		for i := 0; i < 20; i++ {
			if _, err := b2.runRotationTick(r.ctx, r.storage); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	go func() {
		for i := 0; i < n; i += 10 {
			if _, _, err := b2.revokeKey(r.ctx, &logical.Request{Storage: r.storage}, "svc", fmt.Sprintf("k%02d", i), 0, "test"); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 2; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if err := b2.sched.rebuild.Wait(r.ctx); err != nil {
		t.Fatal(err)
	}
	r.tick()
	rotations := map[string]int{}
	for _, ev := range r.events(eventlog.KeyRotated) {
		rotations[ev.Key]++
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("k%02d", i)
		k := r.key("svc", name)
		switch {
		case i%10 == 0:
			if !k.Revoked || rotations[name] > 1 {
				t.Fatalf("%s: revoked %v, rotated %d times", name, k.Revoked, rotations[name])
			}
		case rotations[name] != 1 || k.Current() == nil || k.Current().Version != 2:
			t.Fatalf("%s: rotated %d times, versions %s", name, rotations[name], states(k))
		}
	}
}

// A tick that runs only after a previous version's grace already ended
// (leader failover, seal, a grace shorter than the tick's period) still
// takes the adoption decision: the client that uses only the previous
// version gets it back, up to max_grace_period, with the decision logged
// and alerted; past max_grace_period, or when the client had switched, it
// retires.
func TestRotationLateTickDecidesAdoption(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lateBy    time.Duration // after the rotation
		adopted   bool          // the client verified version 2
		wantState string
	}{
		{"not adopted, within max grace", 21 * time.Minute, false, "1:previous 2:active"},
		{"not adopted, past max grace", 2*time.Hour + time.Minute, false, "1:retired 2:active"},
		{"adopted", 21 * time.Minute, true, "1:retired 2:active"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRotEnv(t)
			r.setupClientRole("svc", "internal", "r", map[string]interface{}{
				"rotation_period": "720h", "grace_period": "10m", "max_grace_period": "2h",
			})
			r.issue("svc", "main", "r")
			r.ok(logical.UpdateOperation, "keys/svc/main/rotate", nil)
			rotatedAt := r.clock.Now()
			r.clock.Advance(5 * time.Minute)
			r.verified("svc", "main", 1)
			if tc.adopted {
				r.verified("svc", "main", 2)
			}
			r.clock.Set(rotatedAt.Add(tc.lateBy))
			r.tick()
			k := r.wantStates("svc", "main", tc.wantState)
			waits := r.events(eventlog.KeyRetirementDeferred)
			if tc.wantState == "1:retired 2:active" {
				if versionAccepted(k.Versions[0], r.clock.Now(), false) || len(waits) != 0 {
					t.Fatalf("version 1 accepted again or deferral logged: %+v", waits)
				}
				return
			}
			if !versionAccepted(k.Versions[0], r.clock.Now(), false) {
				t.Fatal("version 1 still refused after the deferral")
			}
			if len(waits) != 1 || waits[0].Details["refused_since"] != rotatedAt.Add(10*time.Minute+record.RetirementDecisionBound).Format(time.RFC3339) {
				t.Fatalf("retirement_deferred events = %+v", waits)
			}
			if end := k.Versions[0].GraceEndsAt; !end.Equal(r.clock.Now().Add(10 * time.Minute)) {
				t.Fatalf("grace extended to %v, want a grace from now", end)
			}
		})
	}
}

// versionAccepted mirrors the version-level acceptance rule of checkKey
// (verify.go) for assertions on stored key records: active always,
// previous until its grace ends, pending only when asked for.
func versionAccepted(v *record.KeyVersion, now time.Time, allowPending bool) bool {
	switch v.State {
	case record.StateActive:
		return true
	case record.StatePrevious:
		return now.Before(v.GraceEndsAt)
	case record.StatePending:
		return allowPending
	}
	return false
}

// A key nobody can read back (external clients by default) must not rotate
// on its schedule: the new secret would reach no one, and once the grace
// ended the client would hold no accepted key. It stays active, is reported
// overdue, and rotates when its owner asks, receiving the new secret once.
func TestScheduledRotationLeavesNonRetrievableKeysToTheirOwner(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("partner", "external", "r", map[string]interface{}{"rotation_period": "24h", "grace_period": "1h", "max_grace_period": "2h"})
	resp := r.ok(logical.CreateOperation, "keys/partner/k", map[string]interface{}{"role": "r"})
	key := resp.Data["key"].(string)
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "not rotated automatically") || !strings.Contains(resp.Warnings[0], "keys/partner/k/rotate") {
		t.Fatalf("issuance warnings = %q", resp.Warnings)
	}
	if resp.Data["automatic_rotation"] != false {
		t.Fatalf("automatic_rotation = %v", resp.Data["automatic_rotation"])
	}
	due := r.key("partner", "k").NextRotationAt

	r.clock.Advance(24 * time.Hour)
	r.tick()
	r.clock.Advance(3 * time.Hour) // past grace and max grace of a rotation
	if st := r.tick(); st.rotated != 0 || st.handled != 0 {
		t.Fatalf("a tick long after the due time did work: %+v", st)
	}
	if c := r.verifyCode(key, nil); c != "" {
		t.Fatalf("the only secret the partner holds answers %q; states %s", c, states(r.key("partner", "k")))
	}
	k := r.wantStates("partner", "k", "1:active")
	if !k.NextRotationAt.Equal(due) {
		t.Fatalf("next_rotation_at moved from %s to %s without a rotation", due, k.NextRotationAt)
	}
	if evs := r.events(eventlog.KeyRotated); len(evs) != 0 {
		t.Fatalf("rotation events: %+v", evs)
	}
	// The governance sweep reports it overdue and says what to do.
	r.tick()
	r.testEnv.tick()
	if a := r.alertsOf(record.AlertRotationOverdue); len(a) != 1 || !strings.Contains(a[0].Message, "keys/partner/k/rotate") {
		t.Fatalf("overdue alerts = %+v", a)
	}

	// The owner rotates: the new secret comes back once, the old one stays
	// accepted for its grace, and the schedule moves on.
	rot := r.ok(logical.UpdateOperation, "keys/partner/k/rotate", nil)
	fresh, _ := rot.Data["key"].(string)
	if fresh == "" || fresh == key {
		t.Fatalf("manual rotation returned %q", fresh)
	}
	for _, s := range []string{key, fresh} {
		if c := r.verifyCode(s, nil); c != "" {
			t.Fatalf("after the manual rotation verify = %q", c)
		}
	}
	if k := r.wantStates("partner", "k", "1:previous 2:active"); !k.NextRotationAt.Equal(r.clock.Now().Add(24 * time.Hour)) {
		t.Fatalf("next_rotation_at after the manual rotation = %s", k.NextRotationAt)
	}
}

// A key issued retrievable whose role then turns retrievable off can no
// longer be read back, so it must stop rotating on its schedule too (its
// new secret would reach nobody); it drops its stored plaintext at the tick.
func TestRetrievableTurnedOffStopsScheduledRotation(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "24h", "grace_period": "1h", "max_grace_period": "2h"})
	key := r.issue("svc", "k", "r")
	r.ok(logical.UpdateOperation, "roles/r", map[string]interface{}{"retrievable": false})
	if got := r.ok(logical.ReadOperation, "keys/svc/k", nil).Data["automatic_rotation"]; got != false {
		t.Fatalf("automatic_rotation after retrievable=false = %v", got)
	}
	r.clock.Advance(24 * time.Hour)
	r.tick()
	r.clock.Advance(6 * time.Hour)
	r.tick()
	if c := r.verifyCode(key, nil); c != "" {
		t.Fatalf("the only secret the client holds answers %q; states %s", c, states(r.key("svc", "k")))
	}
	k := r.wantStates("svc", "k", "1:active")
	if k.Retrievable || k.Version(1).Secret != "" {
		t.Fatal("the key still keeps plaintext its role no longer allows")
	}
}

// A scheduled rotation never cuts a previous version's grace short: it
// waits for the end of that grace (extended for adoption up to
// max_grace_period, after a late run, or after a manual rotation just
// before the scheduled time), then rotates.
func TestScheduledRotationWaitsForPreviousGrace(t *testing.T) {
	at := func(day, hour, min int) time.Time { return time.Date(2026, 11, day, hour, min, 0, 0, time.UTC) }
	cases := []struct {
		name  string
		role  map[string]interface{}
		setup func(r *rotEnv) // leaves v1 previous and v2 active
		// checkAt is a time inside v1's (possibly extended) grace after
		// the next scheduled time; doneBy is after that grace.
		checkAt, doneBy time.Time
	}{
		{
			name: "adoption extends grace past the next rotation",
			role: map[string]interface{}{"rotation_period": "24h", "grace_period": "1h", "max_grace_period": "72h"},
			setup: func(r *rotEnv) {
				r.clock.Set(at(28, 12, 0))
				r.tick() // v2 active at 28 12:00, v1 previous
			},
			// The next rotation is due at 29 12:00; v1's grace may be
			// extended to 31 12:00 (max_grace_period).
			checkAt: at(29, 18, 0), doneBy: at(31, 12, 5),
		},
		{
			name: "late cron run",
			role: map[string]interface{}{"rotation_schedule": "0 3 * * *", "grace_period": "20h", "max_grace_period": "20h"},
			setup: func(r *rotEnv) {
				r.clock.Set(at(28, 9, 0)) // 6h late: Vault was down
				r.tick()
			},
			checkAt: at(29, 4, 0), doneBy: at(29, 5, 1),
		},
		{
			name: "manual rotation just before the scheduled time",
			role: map[string]interface{}{"rotation_schedule": "0 3 * * *", "grace_period": "20h", "max_grace_period": "20h"},
			setup: func(r *rotEnv) {
				r.clock.Set(at(28, 2, 55))
				r.tick()
				r.ok(logical.UpdateOperation, "keys/svc/k/rotate", nil)
			},
			checkAt: at(28, 3, 10), doneBy: at(28, 22, 56),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRotEnv(t)
			r.clock.Set(at(27, 12, 0))
			r.setupClientRole("svc", "internal", "r", tc.role)
			old := r.issue("svc", "k", "r")
			tc.setup(r)
			r.wantStates("svc", "k", "1:previous 2:active")
			grace := r.key("svc", "k").Version(1).GraceEndsAt
			// The client keeps using v1 only; ticks run every minute, as
			// Vault's periodic function does.
			for r.clock.Now().Before(tc.checkAt) {
				r.verified("svc", "k", 1)
				r.clock.Advance(time.Minute)
				r.tick()
			}
			if c := r.verifyCode(old, nil); c != "" {
				t.Fatalf("v1 refused (%q) at %s, grace ended %s originally; states %s", c, r.clock.Now(), grace, states(r.key("svc", "k")))
			}
			// Vault Agent is told to come back when the held-back rotation
			// can run, not to poll every few seconds meanwhile.
			k := r.key("svc", "k")
			want := int64(k.Version(1).GraceEndsAt.Sub(r.clock.Now()) / time.Second)
			if grace := r.role("r").EffectiveGracePeriod(r.cfg()); want > int64((grace-record.ReadMargin(grace))/time.Second) {
				want = int64((grace - record.ReadMargin(grace)) / time.Second)
			}
			if ttl := r.ok(logical.ReadOperation, "keys/svc/k", nil).Data["ttl"]; ttl != want {
				t.Fatalf("ttl while the rotation waits = %v, want %d", ttl, want)
			}
			for r.clock.Now().Before(tc.doneBy) {
				r.clock.Advance(time.Minute)
				r.tick()
			}
			// The grace ended, v1 retired, and the held-back rotation ran.
			r.wantStates("svc", "k", "1:retired 2:previous 3:active")
		})
	}
}

// flakyListStorage fails the first failures listings of the clients.
type flakyListStorage struct {
	logical.Storage
	failures int
}

func (f *flakyListStorage) List(ctx context.Context, prefix string) ([]string, error) {
	if prefix == storageClientPrefix && f.failures > 0 {
		f.failures--
		return nil, errors.New("transient: leadership lost")
	}
	return f.Storage.List(ctx, prefix)
}

// A startup scan that fails (a transient storage error) is retried by the
// next rotation tick, so existing keys still rotate without a restart.
func TestFailedStartupScanIsRetried(t *testing.T) {
	r := newRotEnv(t)
	r.setupClientRole("svc", "internal", "r", map[string]interface{}{"rotation_period": "24h", "grace_period": "1h"})
	r.issue("svc", "k", "r")

	b2 := newBackend(r.clock)
	if err := b2.Setup(r.ctx, &logical.BackendConfig{Logger: r.b.logger, System: logical.TestSystemView(), StorageView: r.storage}); err != nil {
		t.Fatal(err)
	}
	if err := b2.initialize(r.ctx, &logical.InitializationRequest{Storage: &flakyListStorage{Storage: r.storage, failures: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := b2.sched.rebuild.Wait(r.ctx); err == nil || b2.sched.rotation.Len() != 0 {
		t.Fatalf("the scan should have failed with nothing queued: %v, %d queued", err, b2.sched.rotation.Len())
	}
	r.clock.Advance(24 * time.Hour)
	req := &logical.Request{Storage: r.storage}
	if err := b2.rotationTick(r.ctx, req); err != nil { // retries the scan
		t.Fatal(err)
	}
	if err := b2.sched.rebuild.Wait(r.ctx); err != nil {
		t.Fatalf("the retried scan: %v", err)
	}
	if err := b2.rotationTick(r.ctx, req); err != nil {
		t.Fatal(err)
	}
	if k, err := b2.getKey(r.ctx, r.storage, "svc", "k"); err != nil || states(k) != "1:previous 2:active" {
		t.Fatalf("after the retried scan and a tick: %s %v", states(k), err)
	}
}
